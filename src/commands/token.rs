//! `token list|create|revoke` (admin token). A secret is printed once, by
//! `create`, alone on stdout (so `T=$(onelaunch token create …)` works);
//! nothing else ever prints one.

use anyhow::Result;
use onelaunch_api::{TokenCreate, TokenDto};

use crate::cli::{Global, Output, TokenCmd};
use crate::config::connect;
use crate::exit;
use crate::output::print_json;

pub(crate) async fn run(g: &Global, cmd: TokenCmd) -> Result<u8> {
    let conn = connect(g)?;
    match cmd {
        TokenCmd::List => {
            let tokens = conn.client.list_tokens().await?;
            if g.output == Output::Json {
                print_json(&tokens)?;
            } else {
                println!(
                    "{:>5}  {:<24} {:<8} {:<21} {:<21} {:<21} STATE",
                    "ID", "NAME", "PROJECT", "CREATED", "EXPIRES", "LAST USED"
                );
                for t in &tokens {
                    println!(
                        "{:>5}  {:<24} {:<8} {:<21} {:<21} {:<21} {}",
                        t.id,
                        t.name,
                        t.project_id
                            .map_or_else(|| "admin".to_string(), |p| p.to_string()),
                        when(Some(t.created_date)),
                        when(t.expires_date),
                        when(t.last_used_date),
                        t.status
                    );
                }
            }
        }
        TokenCmd::Create {
            name,
            project,
            admin: _,
            expires_in_days,
        } => {
            let issued = conn
                .client
                .create_token(&TokenCreate {
                    name: Some(name),
                    project_id: project,
                    expires_in_days,
                    expires_at: None,
                })
                .await?;
            if g.output == Output::Json {
                // The one place this token is printed, on purpose: shown once.
                print_json(&issued)?;
            } else {
                eprintln!(
                    "{} (shown once; store it now)",
                    describe(&issued.info, "Created")
                );
                // The one place this token is printed, on purpose: shown once.
                println!("{}", issued.token);
            }
        }
        TokenCmd::Revoke { id } => {
            let t = conn.client.revoke_token(id).await?;
            if g.output == Output::Json {
                print_json(&t)?;
            } else {
                println!("{}", describe(&t, "Revoked"));
            }
        }
    }
    Ok(exit::OK)
}

fn describe(t: &TokenDto, what: &str) -> String {
    let scope = t
        .project_id
        .map_or_else(|| "admin".to_string(), |p| format!("project {p}"));
    let expires = match t.expires_date {
        Some(_) => format!(", expires {}", when(t.expires_date)),
        None => String::new(),
    };
    format!("{what} token [{}] {} ({scope}{expires})", t.id, t.name)
}

/// `2025-01-06 09:05 UTC`, or `never`.
fn when(ms: Option<i64>) -> String {
    ms.map_or_else(
        || "never".into(),
        |ms| crate::output::utc_minutes(ms.div_euclid(1000)),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn times() {
        assert_eq!(super::when(None), "never");
        assert_eq!(super::when(Some(0)), "1970-01-01 00:00 UTC");
        assert_eq!(super::when(Some(1_736_154_300_000)), "2025-01-06 09:05 UTC");
    }
}
