//! The planned scope of a server-led launch or job run: "N of M planned tests
//! reported" and the planned tests no result arrived for.

use maud::{html, Markup};
use onelaunch_api as api;

/// Nothing for a launch or job run without a plan.
pub(super) fn planned(p: &Option<api::PlannedScope>) -> Markup {
    let Some(p) = p else {
        return html! {};
    };
    let missing = p.missing_count();
    html! {
        div class="planned" data-planned=(p.planned) data-reported=(p.reported) {
            p {
                strong { (p.summary()) }
                @if missing > 0 { " " span class="badge missing" { (missing) " missing" } }
            }
            @if !p.missing.is_empty() {
                details open {
                    summary { "Planned tests not reported" }
                    ul class="missing-tests" {
                        @for c in &p.missing {
                            li { (c.name) span class="muted" { " (test case #" (c.test_case_id) ")" } }
                        }
                        @if (p.missing.len() as i64) < missing {
                            li class="muted" { "… and " (missing - p.missing.len() as i64) " more" }
                        }
                    }
                }
            }
        }
    }
}
