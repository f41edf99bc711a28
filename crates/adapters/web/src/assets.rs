//! The dashboard's files, embedded at compile time: `cargo build` alone
//! makes a binary that serves them, and nothing is read from disk or fetched
//! at run time.

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Path below [`crate::ASSET_BASE`].
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

impl Asset {
    /// A strong ETag from the content (FNV-1a, 64 bits: a cache validator,
    /// not a security measure).
    pub fn etag(&self) -> String {
        let hash = self.body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        format!("\"{hash:016x}\"")
    }
}

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the dashboard.
pub static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("js/app.js", JS),
    asset!("js/api.js", JS),
    asset!("js/format.js", JS),
    asset!("js/html.js", JS),
    asset!("js/router.js", JS),
    asset!("js/ui.js", JS),
    asset!("js/signin.js", JS),
    asset!("js/pipelines.js", JS),
    asset!("js/pipeline.js", JS),
    asset!("js/pipeline_form.js", JS),
    asset!("js/run.js", JS),
    asset!("js/connectors.js", JS),
    asset!("js/api_keys.js", JS),
    asset!("vendor/preact.module.js", JS),
    asset!("vendor/hooks.module.js", JS),
    asset!("vendor/htm.module.js", JS),
];

/// The file at `path`, if there is one.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_the_page_imports_is_embedded() {
        // A module imported but not listed would be a 404 in the browser.
        for asset in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            let text = std::str::from_utf8(asset.body).expect("utf-8");
            for import in text.split("from").skip(1) {
                let Some(spec) = import
                    .trim_start()
                    .strip_prefix('"')
                    .or_else(|| import.trim_start().strip_prefix('\''))
                else {
                    continue;
                };
                let Some(end) = spec.find(['"', '\'']) else {
                    continue;
                };
                let spec = &spec[..end];
                if !spec.starts_with('.') {
                    continue;
                }
                let base = asset.path.rsplit_once('/').map_or("", |(dir, _)| dir);
                let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
                for part in spec.split('/') {
                    match part {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        p => parts.push(p),
                    }
                }
                let target = parts.join("/");
                assert!(
                    find(&target).is_some(),
                    "{} imports {spec} ({target}), which is not embedded",
                    asset.path
                );
            }
        }
    }

    #[test]
    fn etags_differ_with_content() {
        let a = find("js/app.js").expect("app");
        let b = find("app.css").expect("css");
        assert_ne!(a.etag(), b.etag());
        assert_eq!(a.etag(), a.etag());
    }
}
