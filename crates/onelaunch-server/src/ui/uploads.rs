//! The upload sessions of a job run, on its page: which CI pipeline sent what.
//! A job run is shared, so a pipeline of another CI (that got the job run's id
//! through `ALLURE_JOB_RUN_ID`) shows here with its own system and link, next
//! to the job run's own "CI run".

use maud::{html, Markup};

use super::layout;
use crate::db::results::{SessionInfo, MAX_LISTED_SESSIONS};

/// The sessions section: one row per upload session, latest first.
pub(super) fn sessions_section(sessions: &[SessionInfo]) -> Markup {
    html! {
        section id="uploads" aria-labelledby="up-h" {
            h2 id="up-h" { "Uploads" }
            @if sessions.is_empty() {
                p class="empty" { "No upload into this job run yet." }
            } @else {
                table class="list sessions" {
                    thead {
                        tr {
                            th scope="col" { "Session" }
                            th scope="col" { "CI" }
                            th scope="col" { "Pipeline" }
                            th scope="col" { "CI run" }
                            th scope="col" class="num" { "Results" }
                            th scope="col" { "Opened" }
                            th scope="col" { "State" }
                        }
                    }
                    tbody {
                        @for s in sessions {
                            tr {
                                th scope="row" { "#" (s.id) }
                                td { (s.ci.kind.as_deref().unwrap_or("—")) }
                                td {
                                    (s.ci.job_name.as_deref().unwrap_or("—"))
                                    @if let Some(run) = s.ci.run_name.as_deref() {
                                        div class="sub" { (run) }
                                    }
                                }
                                td {
                                    @if let Some(u) = s.ci.run_url.as_deref().filter(|u| is_web_link(u)) {
                                        a href=(u) rel="noopener noreferrer" { (u) }
                                    } @else { "—" }
                                }
                                td class="num" { (s.results) }
                                td { (layout::when(s.created_ms)) }
                                td { @if s.open { "in flight" } @else { "ended" } }
                            }
                        }
                    }
                }
                @if sessions.len() as i64 >= MAX_LISTED_SESSIONS {
                    p class="muted" { "The latest " (MAX_LISTED_SESSIONS) " uploads are shown." }
                }
            }
        }
    }
}

/// Only `http(s)` links are links (the server refuses others; rows from
/// older clients carry none).
fn is_web_link(u: &str) -> bool {
    let lower = u.to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}
