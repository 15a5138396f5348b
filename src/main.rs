//! `realstat`: serve (default), query, sign, simulate, config schema. See `realstat --help`.

use std::error::Error;
use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory, FromArgMatches};

use realstat::cli::{schema, Cli, Command, ConfigCommand, MetricsCommand, SchemaFormat, ServeArgs};
use realstat::config::Settings;
use realstat::startup::Application;
use realstat::telemetry::{self, LogFormat};

fn main() -> ExitCode {
    // The matches are kept beside the parsed values: they tell which settings the operator gave
    // (flag or environment) and which are clap's defaults, which must not hide the config file.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        None => serve(&cli.serve, &matches),
        Some(Command::Serve(args)) => {
            let sub = matches.subcommand_matches("serve").unwrap_or(&matches);
            serve(&args, sub)
        }
        Some(Command::Config(ConfigCommand::Schema { format })) => {
            print_schema(format);
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Metrics(MetricsCommand::List)) => {
            telemetry::out(json(&schema::admin()));
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "dev")]
        Some(Command::Sign(args)) => Ok(realstat::dev::commands::sign(args)),
        #[cfg(feature = "dev")]
        Some(Command::Query(args)) => realstat::dev::commands::query(args).map_err(Into::into),
        #[cfg(feature = "dev")]
        Some(Command::Simulate(args)) => {
            telemetry::init(LogFormat::Text);
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

fn print_schema(format: SchemaFormat) {
    match format {
        SchemaFormat::Json => telemetry::out(json(&schema::schema())),
        SchemaFormat::Markdown => telemetry::out(schema::markdown().trim_end()),
    }
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn serve(args: &ServeArgs, matches: &ArgMatches) -> Result<ExitCode, Box<dyn Error>> {
    let settings = Settings::load(args.config.as_deref(), &args.overrides(matches))?;
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
