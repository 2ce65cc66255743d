//! `launch gate`, `project gate`, `plan gate`: the launch-wide quality gate.

use std::time::{Duration, Instant};

use anyhow::Result;
use onelaunch_api::{GateReport, GateRules};
use onelaunch_client::GateOwner;

use crate::cli::{GateArgs, GateRuleArgs, Global, Output};
use crate::config::connect;
use crate::exit;
use crate::output::{md_escape, print_json};

/// How often `launch gate --wait` asks whether the launch closed.
const POLL: Duration = Duration::from_secs(2);

pub(crate) async fn launch(g: &Global, args: GateArgs) -> Result<u8> {
    let conn = connect(g)?;
    let rules = args.rules.to_rules();
    rules
        .validate()
        .map_err(|e| exit::Exit::new(exit::USAGE, e.replace("field `", "rule `")))?;
    let mut still_open = false;
    if args.wait {
        let deadline = Instant::now() + args.timeout;
        loop {
            let l = conn.client.get_launch(args.id).await?;
            if l.closed {
                break;
            }
            if Instant::now() >= deadline {
                still_open = true;
                eprintln!(
                    "onelaunch: launch [{}] is still open after {}; judged as it stands",
                    args.id,
                    crate::duration::show(args.timeout)
                );
                break;
            }
            tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
    }
    let report = if rules.is_empty() && rules.failure_statuses.is_none() {
        conn.client.launch_gate(args.id).await?
    } else {
        conn.client.judge_launch(args.id, &rules).await?
    };
    match g.output {
        Output::Json => print_json(&report)?,
        Output::Markdown => print!("{}", markdown(&report, still_open)),
        Output::Text => print!("{}", text(&report)),
    }
    Ok(if report.passed {
        exit::OK
    } else {
        exit::GATE_FAILED
    })
}

fn verdict(report: &GateReport) -> &'static str {
    if report.outcomes.is_empty() && report.allure.is_empty() {
        "no rules"
    } else if report.passed {
        "passed"
    } else {
        "FAILED"
    }
}

/// One line per rule, its details indented below it.
pub(crate) fn text(report: &GateReport) -> String {
    let mut out = format!(
        "Quality gate of launch [{}]: {}{}\n",
        report.launch_id,
        verdict(report),
        if report.launch_closed {
            " (stored when the launch closed)"
        } else {
            " (launch open: judged now)"
        }
    );
    if report.outcomes.is_empty() && report.allure.is_empty() {
        out.push_str(
            "  no rule is set: give rules (--max-failures, --min-pass-rate, …) or set the \
             project's (onelaunch project gate)\n",
        );
    }
    for o in &report.outcomes {
        out.push_str(&format!(
            "  {} {}: {} (expected {})\n",
            if o.passed { "PASS" } else { "FAIL" },
            o.rule,
            o.actual,
            o.expected
        ));
        for d in &o.details {
            out.push_str(&format!("         {d}\n"));
        }
    }
    for a in &report.allure {
        out.push_str(&format!(
            "  FAIL allure {}{}\n",
            a.name,
            a.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ));
    }
    out
}

/// A Markdown table for CI job summaries.
pub(crate) fn markdown(report: &GateReport, still_open: bool) -> String {
    let mut out = format!(
        "### Quality gate of launch {}: {}\n\n",
        report.launch_id,
        verdict(report)
    );
    if still_open {
        out.push_str("The launch was still open: judged as it stood.\n\n");
    }
    if report.outcomes.is_empty() && report.allure.is_empty() {
        out.push_str("No rule is set.\n");
        return out;
    }
    out.push_str("| rule | expected | measured | result |\n| --- | --- | --- | --- |\n");
    for o in &report.outcomes {
        let mut measured = md_escape(&o.actual);
        if !o.details.is_empty() {
            let shown: Vec<String> = o.details.iter().map(|d| md_escape(d)).collect();
            measured.push_str(&format!(": {}", shown.join(", ")));
        }
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            o.rule,
            md_escape(&o.expected),
            measured,
            if o.passed { "pass" } else { "**fail**" }
        ));
    }
    for a in &report.allure {
        out.push_str(&format!(
            "| allure {} | | {} | **fail** |\n",
            md_escape(&a.name),
            md_escape(a.message.as_deref().unwrap_or(""))
        ));
    }
    out
}

/// `project gate` and `plan gate`: show, replace or clear rules.
pub(crate) async fn owner(
    g: &Global,
    owner: GateOwner,
    args: &GateRuleArgs,
    clear: bool,
) -> Result<u8> {
    let conn = connect(g)?;
    let rules = args.to_rules();
    let changing = clear || !rules.is_empty() || rules.failure_statuses.is_some();
    let rules = if changing {
        rules
            .validate()
            .map_err(|e| exit::Exit::new(exit::USAGE, e.replace("field `", "rule `")))?;
        conn.client
            .set_gate_rules(owner, &if clear { GateRules::default() } else { rules })
            .await?
    } else {
        conn.client.gate_rules(owner).await?
    };
    if g.output == Output::Json {
        print_json(&rules)?;
    } else {
        print!("{}", rules_text(&rules));
    }
    Ok(exit::OK)
}

fn rules_text(r: &GateRules) -> String {
    let mut lines = Vec::new();
    if let Some(n) = r.max_failures {
        lines.push(format!("max failures: {n}"));
    }
    if let Some(p) = r.min_pass_rate {
        lines.push(format!("min pass rate: {p}%"));
    }
    if let Some(n) = r.min_tests {
        lines.push(format!("min tests: {n}"));
    }
    for (set, what) in [
        (r.all_job_runs, "every expected job run finished"),
        (r.all_planned, "every planned test reported"),
        (r.no_new_failures, "no new failures"),
    ] {
        if set == Some(true) {
            lines.push(what.to_string());
        }
    }
    if r.failure_statuses.is_some() {
        lines.push(format!(
            "failure statuses: {}",
            r.failure_statuses().join(", ")
        ));
    }
    if lines.is_empty() {
        "no rules\n".to_string()
    } else {
        lines.iter().map(|l| format!("{l}\n")).collect()
    }
}
