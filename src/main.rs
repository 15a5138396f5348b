//! `realstat`: serve (default), query, sign, simulate. See `realstat --help`.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use realstat::cli::{Cli, Command, QueryArgs, ServeArgs, SignArgs, SimulateArgs};
use realstat::config::{LogFormat, Settings};
use realstat::startup::Application;
use realstat::{client, simulate, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve(cli.serve)) {
        Command::Serve(args) => serve(args),
        Command::Query(args) => query(args),
        Command::Sign(args) => sign(args),
        Command::Simulate(args) => run_simulator(args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("realstat: {message}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> Result<ExitCode, String> {
    let settings = Settings::resolve(&args).map_err(|e| e.to_string())?;
    telemetry::init(settings.log_format);
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(
            api_port = app.api_port(),
            admin_port = app.admin_port(),
            "listening"
        );
        if let Some(banner) = app.demo_banner() {
            // The banner is for the person at the terminal; it holds the demo's one-off secret,
            // so it goes to stdout, never through the log pipeline.
            // A closed stdout (a detached terminal, a pipe whose reader left) must not stop the
            // service: the write's error is ignored.
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{banner}").and_then(|_| out.flush());
        }
        app.run_until_stopped().await.map_err(|e| e.to_string())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The request body of `query` and `sign`, fields in the vendor's order: ccId (only when
/// given), vdn, taskId (as a string: it may exceed 64 bits).
fn request_body(cc_id: Option<u16>, vdn: u16, task_id: &str) -> String {
    let task = serde_json::Value::String(task_id.to_owned());
    match cc_id {
        Some(cc) => format!(r#"{{"ccId":{cc},"vdn":{vdn},"taskId":{task}}}"#),
        None => format!(r#"{{"vdn":{vdn},"taskId":{task}}}"#),
    }
}

fn now_timestamp() -> String {
    realstat::auth::c2::format_timestamp(realstat::fold::calendar::now_ms() / 1000)
}

fn query(args: QueryArgs) -> Result<ExitCode, String> {
    let url = args.url.trim_end_matches('/');
    let authority = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported by query (put TLS in front, or use curl with `realstat sign`)")?;
    let r = &args.request;
    let body = request_body(r.cc_id, r.vdn, &r.task_id);
    let content_type = "application/json;charset=UTF-8";
    let length = body.len().to_string();
    let path = realstat::api::PATH;
    let authorization = realstat::auth::c2::sign(
        &r.ak,
        r.sk.as_bytes(),
        &now_timestamp(),
        "POST",
        path,
        None,
        &[
            ("content-length", length.as_bytes()),
            ("content-type", content_type.as_bytes()),
            ("host", authority.as_bytes()),
        ],
        body.as_bytes(),
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
    println!("{text}");
    Ok(if response.status == 200 {
        ExitCode::SUCCESS
    } else {
        eprintln!("HTTP {}", response.status);
        ExitCode::FAILURE
    })
}

fn sign(args: SignArgs) -> Result<ExitCode, String> {
    let r = &args.request;
    let body = request_body(r.cc_id, r.vdn, &r.task_id);
    let authorization = realstat::auth::c2::sign(
        &r.ak,
        r.sk.as_bytes(),
        &now_timestamp(),
        "POST",
        realstat::api::PATH,
        None,
        &[("host", args.host.as_bytes())],
        body.as_bytes(),
    );
    println!("{authorization}");
    eprintln!(
        "# signed for Host {host} and exactly this body; for example:\n\
         # curl -X POST http://{host}{path} -H 'Content-Type: application/json;charset=UTF-8' \
         -H \"Authorization: $(realstat sign ...)\" -d '{body}'",
        host = args.host,
        path = realstat::api::PATH,
    );
    Ok(ExitCode::SUCCESS)
}

fn run_simulator(args: SimulateArgs) -> Result<ExitCode, String> {
    telemetry::init(LogFormat::Text);
    let mut extra = Vec::new();
    for p in &args.kafka_property {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("--kafka-property {p:?} is not key=value"))?;
        extra.push((k.to_owned(), v.to_owned()));
    }
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
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // Ctrl-C / SIGTERM end the run cleanly (the producer flushes what it has).
    std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(async {
                let _ = tokio::signal::ctrl_c().await;
            });
            flag.store(true, std::sync::atomic::Ordering::Release);
        }
    });
    let report = simulate::produce(&args.kafka_brokers, &args.topic, &extra, opts, &stop)
        .map_err(|e| e.to_string())?;
    eprintln!("{report:?}");
    Ok(ExitCode::SUCCESS)
}
