//! The `query` and `simulate` commands.

use std::process::ExitCode;
use std::time::Duration;

use super::{client, simulate};
use crate::cli::{request_body, signing_timestamp, QueryArgs, SimulateArgs};
use crate::shutdown::Shutdown;

/// Signs and sends one realstatistic request, prints the answer. Exit status 0 only for an
/// HTTP 200 answer.
pub fn query(args: QueryArgs) -> Result<ExitCode, String> {
    let url = args.url.trim_end_matches('/');
    let authority = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported by query (put TLS in front, or use curl with `realstat sign`)")?;
    let r = &args.request;
    let body = request_body(r.cc_id, r.vdn, &r.task_id);
    let content_type = "application/json;charset=UTF-8";
    let length = body.len().to_string();
    let path = crate::api::PATH;
    let authorization = crate::auth::c2::sign(
        &r.ak,
        r.sk.as_bytes(),
        &signing_timestamp(),
        &crate::auth::c2::ClientRequest {
            method: "POST",
            path,
            raw_query: None,
            headers: &[
                ("content-length", length.as_bytes()),
                ("content-type", content_type.as_bytes()),
                ("host", authority.as_bytes()),
            ],
            body: body.as_bytes(),
        },
    );
    let response = client::request(
        authority,
        "POST",
        path,
        &[
            ("Host", authority),
            ("Content-Type", content_type),
            ("Authorization", &authorization),
        ],
        body.as_bytes(),
        Duration::from_secs(10),
    )
    .map_err(|e| format!("request to {url} failed: {e}"))?;
    let text = match response.json() {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_else(|_| response.text()),
        Err(_) => response.text(),
    };
    crate::telemetry::out(text);
    Ok(if response.status == 200 {
        ExitCode::SUCCESS
    } else {
        crate::telemetry::err(format_args!("HTTP {}", response.status));
        ExitCode::FAILURE
    })
}

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
