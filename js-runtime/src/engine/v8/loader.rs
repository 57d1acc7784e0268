//! Module loading confined to the bundle and `extensor:sdk`, by the same
//! resolution rules as QuickJS (`bundle::resolve`). Bundle files live under
//! one synthetic URL prefix that stack traces drop again.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::sync::Arc;

use deno_core::error::ModuleLoaderError;
use deno_core::{
    ModuleLoadOptions, ModuleLoadReferrer, ModuleLoadResponse, ModuleLoader, ModuleResolveResponse,
    ModuleSource, ModuleSourceCode, ModuleSpecifier, ModuleType, ResolutionKind,
};

use super::super::SDK_SOURCE;
use crate::bundle::{SDK_MODULE, Sources};

/// Where bundle files appear to V8; `file:` so relative URLs and stack
/// positions behave as plugin authors expect.
pub(super) const BUNDLE_URL_PREFIX: &str = "file:///bundle/";

/// Loads one installation's bundle. A runtime is made before its
/// installation is known (a spare, `spare`), so the bundle is given once,
/// when the runtime is assigned; until then nothing loads.
#[derive(Default)]
pub(super) struct BundleLoader {
    bundle: OnceCell<Loadable>,
}

struct Loadable {
    sources: Arc<Sources>,
    /// Module URL → bundle path, for every script in the bundle.
    paths: HashMap<String, String>,
}

impl BundleLoader {
    /// Gives the loader its bundle; a runtime is assigned once, so a
    /// second call is a bug.
    pub fn assign(&self, sources: Arc<Sources>) {
        let paths = sources
            .modules
            .keys()
            .filter_map(|p| module_url(p).map(|u| (u.to_string(), p.clone())))
            .collect();
        let assigned = self.bundle.set(Loadable { sources, paths }).is_ok();
        assert!(assigned, "a V8 runtime was assigned a second bundle");
    }

    fn bundle(&self) -> Result<&Loadable, ModuleLoaderError> {
        self.bundle
            .get()
            .ok_or_else(|| ModuleLoaderError::generic("no bundle is assigned to this isolate"))
    }
}

/// The URL a bundle path is loaded under.
pub(super) fn module_url(path: &str) -> Option<ModuleSpecifier> {
    ModuleSpecifier::parse(&format!("{BUNDLE_URL_PREFIX}{path}")).ok()
}

impl ModuleLoader for BundleLoader {
    fn resolve(
        &self,
        specifier: &str,
        referrer: &str,
        kind: ResolutionKind,
    ) -> ModuleResolveResponse {
        let bundle = self.bundle()?;
        if kind == ResolutionKind::MainModule
            && let Some(path) = bundle.paths.get(specifier)
        {
            return module_url(path).ok_or_else(|| ModuleLoaderError::generic("bad entry path"));
        }
        let base = bundle.paths.get(referrer).map(String::as_str).unwrap_or("");
        let path =
            crate::bundle::resolve(base, specifier, |p| bundle.sources.modules.contains_key(p))
                .map_err(ModuleLoaderError::type_error)?;
        let url = if path == SDK_MODULE {
            ModuleSpecifier::parse(SDK_MODULE).ok()
        } else {
            module_url(&path)
        };
        url.ok_or_else(|| ModuleLoaderError::type_error(format!("`{specifier}` cannot be loaded")))
    }

    fn load(
        &self,
        specifier: &ModuleSpecifier,
        _referrer: Option<&ModuleLoadReferrer>,
        _options: ModuleLoadOptions,
    ) -> ModuleLoadResponse {
        let code = if specifier.as_str() == SDK_MODULE {
            Some(SDK_SOURCE.to_owned())
        } else {
            self.bundle.get().and_then(|b| {
                b.paths
                    .get(specifier.as_str())
                    .and_then(|p| b.sources.modules.get(p))
                    .cloned()
            })
        };
        ModuleLoadResponse::Sync(match code {
            Some(code) => Ok(ModuleSource::new(
                ModuleType::JavaScript,
                ModuleSourceCode::String(code.into()),
                specifier,
                None,
            )),
            None => Err(ModuleLoaderError::type_error(format!(
                "`{specifier}` is not a file of the bundle"
            ))),
        })
    }
}
