//! `realstat`: serve (default), query, sign, simulate. See `realstat --help`.

use std::error::Error;
use std::process::ExitCode;

use clap::Parser;

use realstat::cli::{self, Cli, Command, ServeArgs};
use realstat::config::Settings;
use realstat::startup::Application;
use realstat::telemetry;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve(cli.serve)) {
        Command::Serve(args) => serve(args),
        Command::Sign(args) => Ok(cli::sign(args)),
        #[cfg(feature = "dev")]
        Command::Query(args) => realstat::dev::commands::query(args).map_err(Into::into),
        #[cfg(feature = "dev")]
        Command::Simulate(args) => {
            telemetry::init(realstat::config::LogFormat::Text);
            realstat::dev::commands::simulate(args).map_err(Into::into)
        }
    };
    result.unwrap_or_else(|e| {
        telemetry::err(format_args!("realstat: {}", chain(e.as_ref())));
        ExitCode::FAILURE
    })
}

/// An error and its causes, outermost first: "a: b: c".
fn chain(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let part = c.to_string();
        // thiserror messages often embed their source already; do not say it twice.
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    text
}

fn serve(args: ServeArgs) -> Result<ExitCode, Box<dyn Error>> {
    let settings = Settings::load(&args)?;
    telemetry::init(settings.log_format);
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings).await?;
        tracing::info!(
            api_port = app.api_port(),
            admin_port = app.admin_port(),
            "listening"
        );
        #[cfg(feature = "dev")]
        if let Some(banner) = app.demo_banner() {
            // The banner is for the person at the terminal; it holds the demo's one-off secret,
            // so it goes to stdout, never through the log pipeline. A closed stdout (a detached
            // terminal, a pipe whose reader left) must not stop the service.
            telemetry::out(banner);
        }
        app.run_until_stopped().await
    })?;
    Ok(ExitCode::SUCCESS)
}
