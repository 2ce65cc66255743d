//! `launch compare` (two launches test by test) and `launch combine` (a new
//! launch holding the results of several).

use anyhow::Result;
use onelaunch_api::{self as api, category};

use crate::cli::{CombineArgs, CompareArgs, Global, Output};
use crate::config::connect;
use crate::exit;
use crate::output::{format_stats, launch_url, print_json};

pub(crate) async fn compare(g: &Global, args: CompareArgs) -> Result<u8> {
    let conn = connect(g)?;
    let cmp = conn.client.compare_launches(args.base, args.head).await?;
    if g.output == Output::Json {
        print_json(&cmp)?;
    } else {
        print!("{}", text(&cmp));
    }
    Ok(exit::OK)
}

fn title(c: &str) -> &'static str {
    match c {
        category::NEW_FAILURE => "New failures",
        category::STILL_FAILING => "Still failing",
        category::FIXED => "Fixed",
        category::ADDED => "Added",
        category::REMOVED => "Removed",
        _ => "Flaky, otherwise unchanged",
    }
}

/// Each job's outcome: `job: status` (attempts when they differ).
fn outcomes(o: &[api::JobOutcome]) -> String {
    o.iter()
        .map(|o| {
            if o.flaky {
                format!(
                    "{}: {} (attempts: {})",
                    o.job,
                    o.status,
                    o.attempts.join(" → ")
                )
            } else {
                format!("{}: {}", o.job, o.status)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The summary line, then one section per category with a line per test.
pub(crate) fn text(c: &api::LaunchComparison) -> String {
    let s = &c.summary;
    let mut out = format!(
        "Launch [{}] {} compared with [{}] {}\n  new failures {}, still failing {}, fixed {}, \
         added {}, removed {}, unchanged {}; flaky {}\n",
        c.head.id,
        c.head.name,
        c.base.id,
        c.base.name,
        s.new_failures,
        s.still_failing,
        s.fixed,
        s.added,
        s.removed,
        s.unchanged,
        s.flaky
    );
    for cat in category::ALL {
        let tests: Vec<&api::ComparedTest> = c.tests.iter().filter(|t| t.category == cat).collect();
        if tests.is_empty() {
            continue;
        }
        out.push_str(&format!("{}:\n", title(cat)));
        for t in tests {
            let flaky = if t.flaky { " [flaky]" } else { "" };
            let sides = match (t.base.is_empty(), t.head.is_empty()) {
                (true, _) => outcomes(&t.head),
                (_, true) => outcomes(&t.base),
                _ => format!("{}  ⇒  {}", outcomes(&t.base), outcomes(&t.head)),
            };
            out.push_str(&format!("  {}{flaky}  ({sides})\n", t.name));
        }
    }
    out
}

pub(crate) async fn combine(g: &Global, args: CombineArgs) -> Result<u8> {
    let conn = connect(g)?;
    let l = conn
        .client
        .combine_launches(&args.ids, &args.launch_name)
        .await?;
    if g.output == Output::Json {
        print_json(&l)?;
    } else {
        let stats = conn.client.launch_statistic(l.id).await?;
        let from: Vec<String> = l.combined_from.iter().map(|i| format!("[{i}]")).collect();
        println!(
            "Launch [{}] {} combined from {}: {}\n  {}",
            l.id,
            l.name,
            from.join(", "),
            launch_url(&conn, &l),
            format_stats(&stats)
        );
    }
    Ok(exit::OK)
}
