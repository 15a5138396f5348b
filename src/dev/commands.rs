//! The `query`, `sign` and `simulate` commands.

use std::process::ExitCode;

use super::simulate;
use crate::auth::client;
use crate::cli::{SignArgs, SimulateArgs};
use crate::shutdown::Shutdown;

pub use super::query::query;

/// Produces simulated traffic until Ctrl-C / SIGTERM or `--max-calls`.
pub fn simulate(args: SimulateArgs) -> Result<ExitCode, String> {
    let opts = simulate::SimulateOptions {
        cc_id: args.cc_id,
        vdn: args.vdn,
        tasks: args.tasks.clone(),
        calls_per_second: args.rate,
        answer_ratio: args.answer_ratio,
        planned_per_task: args.planned,
        duplicate_ratio: args.duplicates,
        max_calls: args.max_calls,
        seed: args.seed,
    };
    let stop = Shutdown::new();
    let on_signal = stop.clone();
    // Ctrl-C / SIGTERM end the run cleanly (the producer flushes what it has).
    std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(crate::shutdown::terminate_signal());
            on_signal.trigger();
        }
    });
    if let Some(url) = args.callback.clone() {
        let zone = jiff::tz::TimeZone::get(&args.timezone).map_err(|e| e.to_string())?;
        let feed = simulate::callback::FeedOptions {
            url,
            zone,
            retry_after: args.callback_retry_delay,
            duplicate_ratio: args.duplicates,
        };
        let report = simulate::callback::feed(opts, feed, &stop);
        crate::telemetry::err(format_args!("{report:?}"));
        return Ok(ExitCode::SUCCESS);
    }
    let report = simulate::produce(
        args.kafka_brokers.as_deref().unwrap_or_default(),
        &args.topic,
        &args.kafka_property,
        opts,
        &stop,
    )
    .map_err(|e| e.to_string())?;
    crate::telemetry::err(format_args!("{report:?}"));
    Ok(ExitCode::SUCCESS)
}

/// `realstat sign`: prints the Authorization header of a request for `args.host` (signed over
/// `host` alone, so curl's own Content-Length and Content-Type need not match).
pub fn sign(args: SignArgs) -> ExitCode {
    let r = &args.request;
    let body = client::realstatistic_body(r.cc_id, r.vdn, &r.task_id);
    let request =
        client::Request::post_json(&args.host, crate::api::PATH, body.as_bytes()).host_only();
    let authorization =
        client::authorization(&r.ak, r.sk.as_bytes(), &client::timestamp_now(), &request);
    crate::telemetry::out(authorization);
    crate::telemetry::err(format_args!(
        "# signed for Host {host} and exactly this body; for example:\n\
         # curl -X POST http://{host}{path} -H 'Content-Type: {content_type}' \
         -H \"Authorization: $(realstat sign ...)\" -d '{body}'",
        host = args.host,
        path = crate::api::PATH,
        content_type = client::JSON_CONTENT_TYPE,
    ));
    ExitCode::SUCCESS
}
