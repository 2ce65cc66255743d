//! `*-globals.json` (Allure 3): errors and attachments that belong to no test,
//! e.g. the error of a failing mocha `beforeEach` hook. Each file is parsed
//! (a damaged one is a [`FileProblem`] naming it; the others still go), then
//! the attachments it names and the file itself are sent as raw files of the
//! session (`POST /api/upload/file?id=<session>`, one file per request, so at
//! most one file is held in memory). The server stores each file once per
//! session, so sending it again (resume, watch's final pass) adds nothing.

use std::path::PathBuf;
use std::sync::Arc;

use onelaunch_model::FileKind;

use super::{
    guess_content_type, read_inside_async, InputFile, Mode, ReadError, UploadError, Uploader,
};
use crate::api::{ClientError, SharedPart};

impl Uploader {
    /// Sends the globals files among `files` (of the results directory `dir`).
    pub(super) async fn upload_globals(
        &mut self,
        dir: &Arc<PathBuf>,
        files: &[InputFile],
        mode: Mode,
    ) -> Result<(), UploadError> {
        for f in files.iter().filter(|f| f.kind == FileKind::Globals) {
            let bytes = match self.read_input(dir, f).await {
                Ok(b) => b,
                Err(m) => {
                    self.problem(f.shown(), m);
                    self.mark_done(f);
                    continue;
                }
            };
            let globals = match onelaunch_model::parse_globals(&bytes) {
                Ok(g) => g,
                Err(_) if mode == Mode::Ready => {
                    self.mark_unparsed(f);
                    continue;
                }
                Err(e) => {
                    self.problem(f.shown(), e.to_string());
                    self.mark_done(f);
                    continue;
                }
            };
            let mut attachments = 0;
            for a in &globals.attachments {
                if !onelaunch_model::is_safe_source(&a.source) {
                    self.problem(
                        f.shown(),
                        format!(
                            "attachment source {:?} refused: not a plain file name in the results directory",
                            a.source
                        ),
                    );
                    continue;
                }
                let content = match read_inside_async(
                    dir.clone(),
                    a.source.clone(),
                    self.opts.max_file_bytes,
                )
                .await
                {
                    Ok(b) => b,
                    Err(ReadError::Missing) => {
                        self.problem(
                            f.shown(),
                            format!("attachment {:?} not found in {}", a.source, dir.display()),
                        );
                        continue;
                    }
                    Err(e) => {
                        self.problem(
                            f.shown(),
                            format!("attachment {:?}: {}", a.source, e.message()),
                        );
                        continue;
                    }
                };
                let content_type = a
                    .r#type
                    .clone()
                    .unwrap_or_else(|| guess_content_type(&a.source).to_string());
                let part = SharedPart::new(a.source.clone(), content_type, content);
                if self.send_raw(f, part).await? {
                    attachments += 1;
                }
            }
            let part = SharedPart::new(f.name.clone(), "application/json".into(), bytes);
            if self.send_raw(f, part).await? {
                self.report.global_errors += globals.errors.len();
                self.report.global_attachments += attachments;
            }
            self.mark_done(f);
        }
        Ok(())
    }

    /// Sends one raw file into the session; a refusal is a problem of `f`
    /// (`false`), an unreachable server stops the upload.
    async fn send_raw(&mut self, f: &InputFile, part: SharedPart) -> Result<bool, UploadError> {
        let session = self.ensure_session().await?;
        let client = self.client.clone();
        let parts = [part];
        match self
            .reopener
            .run(|| client.upload_raw_files(session, &parts))
            .await
        {
            Ok(()) => Ok(true),
            Err(ClientError::BadRequest { message, .. } | ClientError::NotFound(message)) => {
                self.problem(
                    f.shown(),
                    format!("the server refused {:?}: {message}", parts[0].file_name),
                );
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }
}
