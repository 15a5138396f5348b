//! The `query` and `simulate` commands.

use std::process::ExitCode;

use super::simulate;
use crate::cli::SimulateArgs;
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
