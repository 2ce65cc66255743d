//! What a project token may make the server do through an integration:
//! which variable names reach a job (and a `command`'s environment), and
//! which provider addresses the server calls.
//!
//! **Variable names** (run `environment`, job `parameters`): a name must look
//! like `[A-Za-z][A-Za-z0-9_]*` (no leading `_`) and must not be one that
//! changes how a process, a shell, an interpreter or a tool runs or where it
//! connects: the dynamic loader (`LD_*`), shells (`PATH`, `IFS`, `ENV`,
//! `BASH_*`, `PS4`, …), interpreters (`PYTHON*`, `NODE_*`, `PERL*`, `RUBY*`,
//! `JAVA_*`, …), tools (`GIT_*`, `SSH_*`, `*PROXY`, `SSL_*`, …), locale and
//! home (`LANG`, `LC_*`, `HOME`, `TMPDIR`), any name ending in `PATH`, and the
//! names the server itself sets or the onelaunch CLI reads (`ALLURE_*`,
//! `ONELAUNCH_*`). Names are compared without regard to case. A deny list alone
//! is never complete, so the server-led run adds an allow rule for the one
//! integration that runs on the server host: a project token's run variables
//! for a `command` job must be parameters an admin declared on the job.
//!
//! **Provider addresses**: a URL is approved when an admin set it (stored as
//! the job's approved URL) or its host is on the list the admin gave with
//! `onelaunch server --allow-integration-host`; GitHub and GitLab without a URL
//! use their public hosts and are always approved.

use super::Integration;

/// Exact names refused (upper case).
const DENIED: &[&str] = &[
    "IFS",
    "ENV",
    "SHELL",
    "SHELLOPTS",
    "BASHOPTS",
    "PS1",
    "PS2",
    "PS3",
    "PS4",
    "PROMPT_COMMAND",
    "GLOBIGNORE",
    "HISTFILE",
    "INPUTRC",
    "ZDOTDIR",
    "HOME",
    "USER",
    "LOGNAME",
    "PWD",
    "OLDPWD",
    "TMPDIR",
    "TMP",
    "TEMP",
    "TEMPDIR",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TZDIR",
    "TERMINFO",
    "TERMCAP",
    "HOSTALIASES",
    "RESOLV_HOST_CONF",
    "RES_OPTIONS",
    "LOCALDOMAIN",
    "EDITOR",
    "VISUAL",
    "KUBECONFIG",
    "CC",
    "CXX",
    "CPP",
    "LD",
    "AR",
    "CFLAGS",
    "CXXFLAGS",
    "CPPFLAGS",
    "LDFLAGS",
    "MAKEFLAGS",
    "MAKEFILES",
    "MFLAGS",
    "GOFLAGS",
    "GOROOT",
    "GOBIN",
    "GOENV",
    "GOTOOLCHAIN",
    "GODEBUG",
    "GOEXPERIMENT",
    "PHPRC",
    "PHP_INI_SCAN_DIR",
    "OPENSSL_CONF",
    "REQUESTS_CA_BUNDLE",
];

/// Prefixes refused (upper case).
const DENIED_PREFIXES: &[&str] = &[
    "ALLURE_",
    "ONELAUNCH_",
    "LD_",
    "DYLD_",
    "MALLOC_",
    "GLIBC_",
    "GCONV_",
    "BASH_",
    "LC_",
    "PYTHON",
    "PIP_",
    "NODE_",
    "NPM_",
    "YARN_",
    "PERL",
    "RUBY",
    "GEM_",
    "BUNDLE_",
    "JAVA_",
    "JDK_",
    "MAVEN_",
    "GRADLE_",
    "SBT_",
    "DOTNET_",
    "COMPLUS_",
    "COREHOST_",
    "CGO_",
    "CARGO_",
    "RUSTC",
    "RUSTUP_",
    "LUA_",
    "TCL",
    "GIT_",
    "SSH_",
    "GPG",
    "GNUPG",
    "SSL_",
    "OPENSSL_",
    "CURL_",
    "WGET",
    "XDG_",
    "DOCKER_",
    "KUBE",
    "HELM_",
    "AWS_",
    "TF_",
    "R_",
    "LESS",
    "SUDO_",
    "SYSTEMD_",
    "PKG_CONFIG",
];

/// Suffixes refused (upper case): search paths and proxies, pagers, options
/// read by JVM tools.
const DENIED_SUFFIXES: &[&str] = &["PATH", "PROXY", "PAGER", "_OPTS"];

/// Why a variable name is refused, or `None` when it may reach a job.
pub(crate) fn refused_var_name(name: &str) -> Option<&'static str> {
    let mut chars = name.chars();
    let shaped = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 255;
    if !shaped {
        return Some(
            "is not a valid variable name (letters, digits and _, starting with a letter)",
        );
    }
    let upper = name.to_ascii_uppercase();
    if upper.starts_with("ALLURE_") || upper.starts_with("ONELAUNCH_") {
        return Some("is reserved: the server sets ALLURE_* variables and ONELAUNCH_* configure the onelaunch CLI a job runs");
    }
    if DENIED.contains(&upper.as_str())
        || DENIED_PREFIXES.iter().any(|p| upper.starts_with(p))
        || DENIED_SUFFIXES.iter().any(|s| upper.ends_with(s))
    {
        return Some(
            "is refused: it could change how a program, shell or tool on the build host runs \
             or where it connects (loader, shell, interpreter, locale, proxy and search-path \
             variables are never passed)",
        );
    }
    None
}

/// Hosts an admin allowed for integration URLs set with a project token
/// (`--allow-integration-host`), lower case, without a trailing dot.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct AllowedHosts(Vec<String>);

impl AllowedHosts {
    /// Host names or IP addresses (IPv6 with or without brackets); empty
    /// entries are ignored.
    pub(crate) fn parse<S: AsRef<str>>(hosts: &[S]) -> Result<AllowedHosts, String> {
        let mut out = Vec::new();
        for h in hosts {
            let h = h.as_ref().trim().trim_end_matches('.').to_ascii_lowercase();
            if h.is_empty() {
                continue;
            }
            let bare = h.trim_start_matches('[').trim_end_matches(']');
            let host = if bare.parse::<std::net::Ipv6Addr>().is_ok() {
                format!("[{bare}]")
            } else {
                h.clone()
            };
            match url::Url::parse(&format!("http://{host}/")) {
                Ok(u) if u.host_str() == Some(host.as_str()) => out.push(host),
                _ => {
                    return Err(format!(
                        "--allow-integration-host: expected a host name or IP address (no scheme, port or path), got {h:?}"
                    ))
                }
            }
        }
        Ok(AllowedHosts(out))
    }

    /// Whether the host of `url` is on the list.
    pub(crate) fn allows(&self, url: &str) -> bool {
        url_host(url).is_some_and(|h| self.0.contains(&h))
    }
}

/// The host of an http(s) URL, as compared with the allow-list.
pub(crate) fn url_host(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    Some(u.host_str()?.trim_end_matches('.').to_ascii_lowercase())
}

/// Whether the server may call the integration's provider: no explicit URL
/// (GitHub's and GitLab's public hosts), the URL an admin set
/// (`approved_url`), or a host on the allow-list.
pub(crate) fn url_approved(
    integration: &Integration,
    approved_url: Option<&str>,
    hosts: &AllowedHosts,
) -> bool {
    let default = match integration {
        Integration::Github(_) => Some(super::github::DEFAULT_URL),
        Integration::Gitlab(_) => Some(super::gitlab::DEFAULT_URL),
        _ => None,
    };
    match integration.url() {
        None => true,
        Some(u) => default == Some(u) || approved_url == Some(u) || hosts.allows(u),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names() {
        for ok in [
            "BROWSER",
            "SUITE",
            "browser",
            "Test_Env2",
            "OUT_DIR",
            "PYTEST_SUITE",
        ] {
            assert_eq!(refused_var_name(ok), None, "{ok}");
        }
        for bad in [
            "LD_PRELOAD",
            "ld_library_path",
            "PATH",
            "Path",
            "IFS",
            "BASH_ENV",
            "ENV",
            "SHELLOPTS",
            "BASHOPTS",
            "PS4",
            "GCONV_PATH",
            "PYTHONPATH",
            "PYTHONSTARTUP",
            "NODE_OPTIONS",
            "PERL5OPT",
            "PERL5LIB",
            "RUBYOPT",
            "JAVA_TOOL_OPTIONS",
            "_JAVA_OPTIONS",
            "LOCPATH",
            "NLSPATH",
            "HOME",
            "TMPDIR",
            "MALLOC_CHECK_",
            "GLIBC_TUNABLES",
            "GIT_SSH_COMMAND",
            "GIT_CONFIG_GLOBAL",
            "https_proxy",
            "HTTP_PROXY",
            "LC_ALL",
            "LANG",
            "ALLURE_ENDPOINT",
            "ALLURE_TOKEN",
            "ONELAUNCH_SPOOL",
            "ONELAUNCH_CONFIG",
            "SSL_CERT_FILE",
            "CLASSPATH",
            "MAVEN_OPTS",
            "_X",
            "1A",
            "A-B",
            "",
        ] {
            assert!(refused_var_name(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn allowed_hosts() {
        let h = AllowedHosts::parse(&["CI.example.com.", " 127.0.0.1 ", "::1", ""]).unwrap();
        assert!(h.allows("https://ci.example.com/jenkins"));
        assert!(h.allows("http://127.0.0.1:8080"));
        assert!(h.allows("http://[::1]:9000/x"));
        assert!(!h.allows("https://evil.example.com"));
        assert!(!h.allows("https://ci.example.com.evil.net"));
        assert!(!h.allows("not a url"));
        assert!(AllowedHosts::parse(&["http://x"]).is_err());
        assert!(AllowedHosts::parse(&["x:80"]).is_err());
        assert!(AllowedHosts::parse(&["x/y"]).is_err());
    }
}
