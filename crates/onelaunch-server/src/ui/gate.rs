//! The quality gate in the web UI: a badge with the verdict stored when a
//! launch closed (launch list and launch page) and the "Quality gate"
//! section of the launch page (each rule, measured against expected, with
//! what broke it, and the failed rules the Allure 3 TestOps plugin
//! reported). For an open launch (or a closed one that had no rules when it
//! closed) the section shows the configured rules judged now, labelled so.

use maud::{html, Markup};

use super::UiResult;
use crate::db::launches::LaunchRow;
use crate::AppState;

/// "gate passed" / "gate failed" for the stored verdict; nothing when the
/// launch has none (open, or no rules when it closed).
pub(super) fn badge(passed: Option<bool>) -> Markup {
    html! {
        @match passed {
            Some(true) => { " " span class="badge gate-passed" title="Quality gate passed when the launch closed" { "gate passed" } }
            Some(false) => { " " span class="badge gate-failed" title="Quality gate failed when the launch closed" { "gate failed" } }
            None => {}
        }
    }
}

/// The section; nothing when no rule applies and the Allure plugin reported
/// no failed rule.
pub(super) async fn section(state: &AppState, launch: &LaunchRow) -> UiResult<Markup> {
    // Without a stored verdict, rules or failed rules from the Allure plugin
    // there is nothing to show: the launch's results are not measured.
    let db = &state.db;
    let stored = launch.closed
        && crate::db::gate::stored_report(db, launch.id)
            .await?
            .is_some();
    if !stored
        && crate::gate::configured_rules(db, launch).await?.is_empty()
        && crate::db::gate::allure_items(db, launch.id)
            .await?
            .is_empty()
    {
        return Ok(html! {});
    }
    let report = crate::gate::report(db, launch, None).await?;
    if report.outcomes.is_empty() && report.allure.is_empty() {
        return Ok(html! {});
    }
    let verdict = if report.passed { "passed" } else { "failed" };
    Ok(html! {
        section id="gate" class="card" aria-labelledby="gate-h" data-gate=(verdict) {
            h2 id="gate-h" {
                "Quality gate "
                @if report.passed { span class="badge gate-passed" { "passed" } }
                @else { span class="badge gate-failed" { "failed" } }
            }
            @if !launch.closed {
                p class="muted" { "The launch is open: these are its configured rules judged now. The verdict is stored when it closes." }
            } @else if launch.gate_passed.is_some() {
                p class="muted" { "Stored when the launch closed: the project's and plan's rules, the strictest value of each." }
            } @else {
                p class="muted" { "No verdict was stored when the launch closed (no rule applied then): these are the current rules judged now." }
            }
            @if !report.outcomes.is_empty() {
                table class="list gate" {
                    thead {
                        tr {
                            th scope="col" { "Rule" }
                            th scope="col" { "Expected" }
                            th scope="col" { "Measured" }
                            th scope="col" { "Result" }
                        }
                    }
                    tbody {
                        @for o in &report.outcomes {
                            tr data-rule=(o.rule) {
                                th scope="row" { (o.rule) }
                                td { (o.expected) }
                                td {
                                    (o.actual)
                                    @if !o.details.is_empty() {
                                        ul class="plain gate-details" { @for d in &o.details { li { (d) } } }
                                    }
                                }
                                td {
                                    @if o.passed { span class="badge gate-passed" { "pass" } }
                                    @else { span class="badge gate-failed" { "fail" } }
                                }
                            }
                        }
                    }
                }
            }
            @if !report.allure.is_empty() {
                h3 { "Failed rules reported by the Allure TestOps plugin" }
                ul class="plain gate-allure" {
                    @for a in &report.allure {
                        li {
                            strong { (a.name) }
                            @if let Some(m) = &a.message { ": " (m) }
                            @if let Some(env) = a.named_env_id { span class="id" { " environment " (env) } }
                        }
                    }
                }
            }
        }
    })
}
