//! The page shell (header, navigation, main) and the small components every
//! page uses: status badges, the status bar, pagination, times.

use maud::{html, Markup, DOCTYPE};

use super::assets;
use super::fmt;
use super::session::Viewer;
use axum::response::Html;

/// Which navigation entry is current.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Nav {
    Launches,
    Jobs,
    Plans,
    Tokens,
    Api,
}

/// What the shell around a page needs.
pub(super) struct Shell<'a> {
    pub viewer: &'a Viewer,
    pub project: i64,
    /// Projects to switch between (only shown when there is more than one).
    pub projects: &'a [(i64, String)],
    pub nav: Nav,
}

fn head(title: &str, refresh: bool) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            @if refresh { meta http-equiv="refresh" content="0"; }
            title { (title) " · onelaunch" }
            link rel="stylesheet" href=(assets::href("style.css"));
            link rel="icon" href=(assets::href("icon.svg")) type="image/svg+xml";
            script src=(assets::href("app.js")) defer {}
        }
    }
}

/// A full page for a logged-in viewer.
pub(super) fn page(shell: &Shell<'_>, title: &str, body: Markup) -> Html<String> {
    let p = shell.project;
    let current = |n: Nav| if shell.nav == n { Some("page") } else { None };
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title, false))
                body data-csrf=(shell.viewer.csrf) {
                    a class="skip" href="#main" { "Skip to content" }
                    header class="top" {
                        a class="brand" href={ "/launches?project=" (p) } { "onelaunch" }
                        nav aria-label="Main" {
                            ul {
                                li { a href={ "/launches?project=" (p) } aria-current=[current(Nav::Launches)] { "Launches" } }
                                li { a href={ "/jobs?project=" (p) } aria-current=[current(Nav::Jobs)] { "Jobs" } }
                                li { a href={ "/plans?project=" (p) } aria-current=[current(Nav::Plans)] { "Test plans" } }
                                @if shell.viewer.scope.is_admin() {
                                    li { a href="/tokens" aria-current=[current(Nav::Tokens)] { "Tokens" } }
                                }
                                li { a href={ "/api-docs?project=" (p) } aria-current=[current(Nav::Api)] { "API" } }
                            }
                        }
                        div class="who" {
                            @if shell.projects.len() > 1 {
                                form method="get" action="/launches" class="project-switch" {
                                    label for="project-switch" class="visually-hidden" { "Project" }
                                    select id="project-switch" name="project" data-autosubmit {
                                        @for (id, name) in shell.projects {
                                            option value=(id) selected[*id == p] { (name) }
                                        }
                                    }
                                    noscript { button type="submit" { "Switch" } }
                                }
                            }
                            span class="muted" {
                                @if !shell.viewer.scope.is_admin() { "project token" } @else { "admin" }
                            }
                            form method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(shell.viewer.csrf);
                                button type="submit" class="link" { "Log out" }
                            }
                        }
                    }
                    main id="main" tabindex="-1" { (body) }
                }
            }
        }
        .into_string(),
    )
}

/// A page without navigation (login).
pub(super) fn bare(title: &str, refresh: bool, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title, refresh))
                body { (body) }
            }
        }
        .into_string(),
    )
}

pub(super) fn error_page(title: &str, message: &str) -> Html<String> {
    bare(
        title,
        false,
        html! {
            main id="main" class="login" {
                h1 { (title) }
                p role="alert" { (message) }
                p { a href="/launches" { "Back to launches" } }
            }
        },
    )
}

/// A status as text with its colour (the text alone carries the meaning).
pub(super) fn status(s: &str) -> Markup {
    html! { span class={ "status s-" (s) } { (s) } }
}

/// Counts by status: a bar (for the eye) plus the same numbers as text.
pub(super) fn status_bar(counts: &[(String, i64)]) -> Markup {
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    let label = if total == 0 {
        "no results".to_string()
    } else {
        counts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| format!("{n} {s}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    html! {
        div class="bar" role="img" aria-label=(label) title=(label) {
            @for (s, n) in counts {
                @if *n > 0 {
                    span class={ "seg s-" (s) } style={ "flex-grow:" (n) } {}
                }
            }
        }
    }
}

/// `12 passed · 3 failed` as text.
pub(super) fn counts_text(counts: &[(String, i64)]) -> Markup {
    html! {
        ul class="counts" {
            @for (s, n) in counts {
                @if *n > 0 {
                    li class={ "c-" (s) } { span class="n" { (n) } " " (s) }
                }
            }
            @if counts.iter().all(|(_, n)| *n == 0) { li class="muted" { "no results yet" } }
        }
    }
}

/// A `<time>` showing how long ago, with the exact time on hover.
pub(super) fn ago(ms: i64, now: i64) -> Markup {
    html! { time datetime=(fmt::iso(ms)) title=(fmt::datetime(ms)) { (fmt::ago(ms, now)) } }
}

pub(super) fn when(ms: i64) -> Markup {
    html! { time datetime=(fmt::iso(ms)) { (fmt::datetime(ms)) } }
}

/// Previous/next links and "page N of M"; `base` ends with `?` or `&`.
pub(super) fn pager(base: &str, page: i64, size: i64, total: i64) -> Markup {
    let pages = ((total + size - 1) / size).max(1);
    html! {
        @if pages > 1 {
            nav class="pager" aria-label="Pages" {
                @if page > 0 {
                    a href=(fmt::page_href(base, 0)) { "« First" }
                    a href=(fmt::page_href(base, page - 1)) rel="prev" { "‹ Previous" }
                } @else {
                    span class="disabled" aria-hidden="true" { "« First" }
                    span class="disabled" aria-hidden="true" { "‹ Previous" }
                }
                span class="where" { "Page " (page + 1) " of " (pages) " · " (total) " in all" }
                @if page + 1 < pages {
                    a href=(fmt::page_href(base, page + 1)) rel="next" { "Next ›" }
                    a href=(fmt::page_href(base, pages - 1)) { "Last »" }
                } @else {
                    span class="disabled" aria-hidden="true" { "Next ›" }
                    span class="disabled" aria-hidden="true" { "Last »" }
                }
            }
        }
    }
}

/// A hidden CSRF field for a form.
pub(super) fn csrf(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name="csrf" value=(viewer.csrf); }
}
