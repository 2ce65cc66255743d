//! The pages behind the links the server returns (`/launch/<id>`,
//! `/jobrun/<id>`). They need no login and show no data: they tell the reader
//! how to see the launch with the CLI or the API.

use axum::extract::Path;
use axum::response::Html;

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · onelaunch</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem}}\
         code{{background:#f2f2f2;padding:.1rem .3rem;border-radius:3px}}</style></head>\
         <body><h1>{title}</h1>{body}</body></html>"
    ))
}

pub async fn home() -> Html<String> {
    page(
        "onelaunch",
        "<p>This onelaunch server speaks the Allure TestOps API under <code>/api</code>. \
         Use the <code>onelaunch</code> CLI to create launches and upload results.</p>",
    )
}

pub async fn launch(Path(id): Path<i64>) -> Html<String> {
    page(
        &format!("Launch {id}"),
        &format!(
            "<p>Show it with <code>onelaunch launch show {id}</code>, or read \
             <code>GET /api/launch/{id}</code>, <code>/api/launch/{id}/statistic</code> and \
             <code>/api/launch/{id}/job</code> with an API token.</p>"
        ),
    )
}

pub async fn job_run(Path(id): Path<i64>) -> Html<String> {
    page(
        &format!("Job run {id}"),
        &format!("<p>Read it with <code>GET /api/jobrun/{id}</code> and an API token.</p>"),
    )
}
