//! The host's own keys in a driver's `[plugins."<uri>"]` table. They choose
//! where the driver runs; the driver never sees them (they are taken out of
//! the table before its init).

use std::time::Duration;

use thiserror::Error;

/// `"none"` (the default: in the daemon's process) or `"process"`.
pub const ISOLATION: &str = "isolation";
/// How long one call to an isolated driver may take before the driver is
/// taken for hung, killed and restarted.
pub const CALL_TIMEOUT: &str = "isolation_call_timeout";
/// The capabilities an isolated driver's process keeps.
pub const CAPABILITIES: &str = "isolation_capabilities";

const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// What a snapshotter or content store needs to build and remove trees
/// owned by any user: ownership, modes, device nodes, file capabilities,
/// and (for mount checks and btrfs subvolume ioctls) `SYS_ADMIN`.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_MKNOD",
    "CAP_SETFCAP",
    "CAP_SYS_ADMIN",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Loaded into the daemon's process.
    InProcess,
    /// Served by a supervised child process.
    Process,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub mode: Mode,
    pub call_timeout: Duration,
    /// Capability names (`CAP_…`), checked.
    pub capabilities: Vec<String>,
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("plugins.\"{uri}\".{key}: {problem}")]
pub struct SettingsError {
    pub uri: String,
    pub key: &'static str,
    pub problem: String,
}

/// The keys with their defaults, for the registration's default table (so
/// `config default` shows them and `config check` knows them).
pub fn defaults() -> toml::Table {
    let mut t = toml::Table::new();
    t.insert(ISOLATION.into(), "none".into());
    t.insert(CALL_TIMEOUT.into(), "30s".into());
    t.insert(
        CAPABILITIES.into(),
        toml::Value::Array(DEFAULT_CAPABILITIES.iter().map(|c| (*c).into()).collect()),
    );
    t
}

impl Settings {
    /// Takes the host's keys out of `table` (the driver's config), checked.
    pub fn take(uri: &str, table: &mut toml::Table) -> Result<Settings, SettingsError> {
        let bad = |key: &'static str, problem: String| SettingsError {
            uri: uri.to_string(),
            key,
            problem,
        };
        let mode = match table.remove(ISOLATION) {
            None => Mode::InProcess,
            Some(toml::Value::String(s)) if s == "none" => Mode::InProcess,
            Some(toml::Value::String(s)) if s == "process" => Mode::Process,
            Some(other) => {
                return Err(bad(
                    ISOLATION,
                    format!("expected \"none\" or \"process\", got {other}"),
                ))
            }
        };
        let call_timeout = match table.remove(CALL_TIMEOUT) {
            None => DEFAULT_CALL_TIMEOUT,
            Some(toml::Value::String(s)) => match rcontainerd_pkg::duration::parse(&s) {
                Ok(d) if !d.is_zero() => d,
                _ => {
                    return Err(bad(
                        CALL_TIMEOUT,
                        format!("expected a positive duration such as \"30s\", got {s:?}"),
                    ))
                }
            },
            Some(other) => {
                return Err(bad(
                    CALL_TIMEOUT,
                    format!("expected a duration such as \"30s\", got {other}"),
                ))
            }
        };
        let capabilities = match table.remove(CAPABILITIES) {
            None => DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect(),
            Some(toml::Value::Array(items)) => {
                let mut names = Vec::with_capacity(items.len());
                for item in items {
                    let name = item.as_str().map(str::to_ascii_uppercase);
                    match name {
                        Some(name) if name.parse::<caps::Capability>().is_ok() => names.push(name),
                        _ => {
                            return Err(bad(
                                CAPABILITIES,
                                format!("{item} is not a capability name such as \"CAP_CHOWN\""),
                            ))
                        }
                    }
                }
                names
            }
            Some(other) => {
                return Err(bad(
                    CAPABILITIES,
                    format!("expected a list of capability names, got {other}"),
                ))
            }
        };
        Ok(Settings {
            mode,
            call_timeout,
            capabilities,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn the_keys_are_taken_out_and_the_rest_is_left_to_the_driver() {
        let mut t = table(
            "isolation = \"process\"\nisolation_call_timeout = \"250ms\"\nisolation_capabilities = [\"cap_chown\"]\nroot_path = \"/x\"\n",
        );
        let s = Settings::take("u", &mut t).unwrap();
        assert_eq!(s.mode, Mode::Process);
        assert_eq!(s.call_timeout, Duration::from_millis(250));
        assert_eq!(s.capabilities, ["CAP_CHOWN"]);
        assert_eq!(t, table("root_path = \"/x\"\n"));
    }

    #[test]
    fn absent_keys_mean_in_process_with_defaults() {
        let s = Settings::take("u", &mut toml::Table::new()).unwrap();
        assert_eq!(s.mode, Mode::InProcess);
        assert_eq!(s.call_timeout, DEFAULT_CALL_TIMEOUT);
        assert_eq!(s.capabilities.len(), DEFAULT_CAPABILITIES.len());
        // The defaults table says the same.
        let mut d = defaults();
        assert_eq!(Settings::take("u", &mut d).unwrap(), s);
        assert!(d.is_empty());
    }

    #[test]
    fn bad_values_name_the_key() {
        for (text, key) in [
            ("isolation = \"thread\"", ISOLATION),
            ("isolation = true", ISOLATION),
            ("isolation_call_timeout = \"soon\"", CALL_TIMEOUT),
            ("isolation_call_timeout = \"0s\"", CALL_TIMEOUT),
            ("isolation_capabilities = [\"CAP_FLY\"]", CAPABILITIES),
            ("isolation_capabilities = \"CAP_CHOWN\"", CAPABILITIES),
        ] {
            let err = Settings::take("io.x.v1.y", &mut table(text)).unwrap_err();
            assert_eq!(err.key, key, "{text}");
            assert!(
                err.to_string()
                    .starts_with(&format!("plugins.\"io.x.v1.y\".{key}: ")),
                "{err}"
            );
        }
    }
}
