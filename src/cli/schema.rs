//! `realstat config schema`: what this binary understands, read from its own command line
//! definition, so that tools (scripts/validate-deploy) and docs (the README's table) never read
//! the Rust source. The settings come from [`Settings`]'s clap attributes, the single place
//! where a setting, its default and its description are written.

use clap::{Arg, ArgAction, Args, CommandFactory};
use serde::Serialize;

use super::Cli;
use crate::config::Settings;

/// One setting: a config file key with its environment variable and flag.
#[derive(Debug, Clone, Serialize)]
pub struct SettingInfo {
    /// Dotted path in the config file (`snapshot.keep`).
    pub key: String,
    pub env: String,
    /// The long flag, with its dashes (`--snapshot-keep`).
    pub flag: String,
    /// What its values are: `address`, `duration`, `integer`, `path`, `zone`, `ip`, `string`,
    /// `format`, or `table` (`key=value` pairs).
    #[serde(rename = "type")]
    pub kind: String,
    /// Takes several values (repeated flag, comma- or `;`-separated in the environment).
    pub list: bool,
    /// As written in any source; `None`: unset unless given.
    pub default: Option<String>,
    pub description: String,
}

/// The flags and environment variables of one command.
#[derive(Debug, Clone, Serialize)]
pub struct CommandInfo {
    pub flags: Vec<String>,
    pub env: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeysFileInfo {
    /// The array of tables in the keys file (`[[key]]`).
    pub table: &'static str,
    pub fields: &'static [&'static str],
}

#[derive(Debug, Clone, Serialize)]
pub struct Schema {
    pub settings: Vec<SettingInfo>,
    pub keys_file: KeysFileInfo,
    /// By command name; nested commands by their words (`config schema`).
    pub commands: std::collections::BTreeMap<String, CommandInfo>,
}

/// Every setting of `serve`, in the order of the schema.
pub fn settings() -> Vec<SettingInfo> {
    Settings::augment_args(clap::Command::new("serve"))
        .get_arguments()
        .map(setting)
        .collect()
}

fn setting(arg: &Arg) -> SettingInfo {
    let text = |s: Option<&std::ffi::OsStr>| s.map(|s| s.to_string_lossy().into_owned());
    let value_name = arg
        .get_value_names()
        .and_then(|n| n.first())
        .map(|n| n.as_str())
        .unwrap_or("STRING");
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    SettingInfo {
        key: arg.get_id().to_string(),
        env: text(arg.get_env()).unwrap_or_default(),
        flag: arg.get_long().map(|l| format!("--{l}")).unwrap_or_default(),
        kind: match value_name {
            "KEY=VALUE" => "table".to_owned(),
            other => other.to_ascii_lowercase(),
        },
        list: matches!(arg.get_action(), ArgAction::Append),
        default: (!defaults.is_empty()).then(|| defaults.join(",")),
        description: arg.get_help().map(|h| h.to_string()).unwrap_or_default(),
    }
}

/// The whole schema: settings, the keys file's fields, every command's flags.
pub fn schema() -> Schema {
    let mut commands = std::collections::BTreeMap::new();
    collect_commands(&Cli::command(), "", &mut commands);
    Schema {
        settings: settings(),
        keys_file: KeysFileInfo {
            table: "key",
            fields: crate::auth::keys::file_fields(),
        },
        commands,
    }
}

fn collect_commands(
    cmd: &clap::Command,
    prefix: &str,
    out: &mut std::collections::BTreeMap<String, CommandInfo>,
) {
    for sub in cmd.get_subcommands() {
        let name = format!("{prefix}{}", sub.get_name());
        let args = sub
            .get_arguments()
            .filter(|a| !matches!(a.get_action(), ArgAction::Help | ArgAction::Version));
        let (mut flags, mut env) = (Vec::new(), Vec::new());
        for a in args {
            flags.extend(a.get_long().map(|l| format!("--{l}")));
            env.extend(a.get_env().map(|e| e.to_string_lossy().into_owned()));
        }
        if sub.has_subcommands() {
            collect_commands(sub, &format!("{name} "), out);
        } else {
            out.insert(name, CommandInfo { flags, env });
        }
    }
}

/// What the admin listener serves: `realstat metrics list`.
#[derive(Debug, Clone, Serialize)]
pub struct AdminInfo {
    pub routes: &'static [&'static str],
    pub metrics: Vec<crate::metrics::MetricInfo>,
}

pub fn admin() -> AdminInfo {
    AdminInfo {
        routes: crate::admin::ROUTES,
        metrics: crate::metrics::catalogue(),
    }
}

/// The README's settings table: one row per setting.
pub fn markdown() -> String {
    let mut out = String::from(
        "| file key | environment | flag | default | meaning |\n| --- | --- | --- | --- | --- |\n",
    );
    for s in settings() {
        let default = s.default.map_or("none".to_owned(), |d| format!("`{d}`"));
        out.push_str(&format!(
            "| `{}` | `{}` | `{}` | {default} | {} |\n",
            s.key,
            s.env,
            s.flag,
            s.description.replace('|', "\\|"),
        ));
    }
    out
}
