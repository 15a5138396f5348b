//! The `query`, `sign` and `simulate` commands.

use std::process::ExitCode;

use super::simulate;
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
    let report = simulate::produce(
        &args.kafka_brokers,
        &args.topic,
        &args.kafka_property,
        opts,
        &stop,
    )
    .map_err(|e| e.to_string())?;
    crate::telemetry::err(format_args!("{report:?}"));
    Ok(ExitCode::SUCCESS)
}

/// The request body of `query` and `sign`, fields in the vendor's order: ccId (only when
/// given), vdn, taskId (as a string: it may exceed 64 bits).
pub fn request_body(cc_id: Option<u16>, vdn: u16, task_id: &str) -> String {
    let task = serde_json::Value::String(task_id.to_owned());
    match cc_id {
        Some(cc) => format!(r#"{{"ccId":{cc},"vdn":{vdn},"taskId":{task}}}"#),
        None => format!(r#"{{"vdn":{vdn},"taskId":{task}}}"#),
    }
}

/// Now, as the signature's timestamp.
pub fn signing_timestamp() -> String {
    crate::auth::c2::format_timestamp(crate::clock::now_unix())
}

/// `realstat sign`: prints the Authorization header of a request for `args.host`.
pub fn sign(args: SignArgs) -> ExitCode {
    let r = &args.request;
    let body = request_body(r.cc_id, r.vdn, &r.task_id);
    let authorization = crate::auth::c2::sign(
        &r.ak,
        r.sk.as_bytes(),
        &signing_timestamp(),
        &crate::auth::c2::ClientRequest {
            method: "POST",
            path: crate::api::PATH,
            raw_query: None,
            headers: &[("host", args.host.as_bytes())],
            body: body.as_bytes(),
        },
    );
    crate::telemetry::out(authorization);
    crate::telemetry::err(format_args!(
        "# signed for Host {host} and exactly this body; for example:\n\
         # curl -X POST http://{host}{path} -H 'Content-Type: application/json;charset=UTF-8' \
         -H \"Authorization: $(realstat sign ...)\" -d '{body}'",
        host = args.host,
        path = crate::api::PATH,
    ));
    ExitCode::SUCCESS
}
