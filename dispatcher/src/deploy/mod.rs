//! The upload pipeline and every other change to scripts, used by the API, the CLI and
//! the demo: name checks (syntax; in the customers namespace, not a name reserved for the
//! platform) and tag checks → size cap → validate + compile (in a worker process, or
//! the artifact of the same bytes reused) + link (before anything is committed) → blob
//! written durably → version (and, unless asked not to, its deployment) committed →
//! index updated, all under the index's writer lock. A failure at any step changes
//! nothing. Deployments and rollbacks (`deployments.rs`) go through the same lock.

mod bindings;
mod consumers;
mod deployments;
mod schedules;

use std::sync::Arc;

use bytes::Bytes;

use crate::runtime::bindings::UploadContext;
use crate::runtime::warmup::ScriptComponent;
use crate::runtime::{Deployed, LoadedScript, PrepareError, Runtime};
use crate::store::{
    BindingRequest, CUSTOMER_NAMESPACE, ConsumerSpec, LiveVersion, ScriptHead, Store, StoreError,
    Upload, Uploaded, sha256_hex,
};

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(
        "invalid script name `{0}`: use 1-63 of a-z, 0-9 and -, starting with a letter or digit"
    )]
    InvalidName(String),
    #[error(
        "invalid tag `{0}`: tags are 1-128 printable characters and may not start with `customer_id:`"
    )]
    InvalidTag(String),
    #[error("{0}")]
    InvalidBinding(String),
    #[error("the component is {size} bytes; the limit is {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    #[error("the script name `{0}` is taken")]
    NameTaken(String),
    #[error("the script name `{0}` is reserved for the platform")]
    Reserved(String),
    #[error("script `{0}` not found")]
    NotFound(String),
    #[error("the first upload of script `{0}` must be deployed (drop `deploy=false`)")]
    FirstUploadUndeployed(String),
    #[error("{0}")]
    InvalidAnnotation(String),
    #[error("{0}")]
    InvalidSchedule(String),
    #[error(
        "script `{0}` has schedules but its component does not export \
         platform:worker/scheduled (add a #[sdk::scheduled] handler, or clear the schedules)"
    )]
    MissingScheduledExport(String),
    #[error("{0}")]
    InvalidConsumer(String),
    #[error(
        "script `{0}` consumes queues but its component does not export \
         platform:worker/queue-handler (add a #[sdk::queue] handler, or give no consumers)"
    )]
    MissingQueueExport(String),
    #[error(transparent)]
    Store(StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for DeployError {
    fn from(e: StoreError) -> Self {
        DeployError::Store(e)
    }
}

const MAX_TAGS: usize = 32;

pub fn validate_tags(tags: &[String]) -> Result<(), DeployError> {
    if tags.len() > MAX_TAGS {
        return Err(DeployError::InvalidTag(format!(
            "(more than {MAX_TAGS} tags)"
        )));
    }
    for tag in tags {
        let ok = !tag.is_empty()
            && tag.len() <= 128
            && !tag.starts_with("customer_id:")
            && tag.chars().all(|c| !c.is_control());
        if !ok {
            return Err(DeployError::InvalidTag(tag.clone()));
        }
    }
    Ok(())
}

/// The WfP upload metadata (the fields we act on; unknown fields are ignored).
#[derive(Default, serde::Deserialize)]
pub struct Metadata {
    pub main_module: Option<String>,
    pub tags: Option<Vec<String>>,
    pub bindings: Option<Vec<BindingRequest>>,
    #[serde(default)]
    pub annotations: Annotations,
    /// `{"crons": ["*/5 * * * *"]}`: the script's Cron Triggers.
    pub triggers: Option<Triggers>,
    /// The queues this script consumes.
    pub consumers: Option<Vec<ConsumerSpec>>,
}

/// The upload's `triggers`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Triggers {
    #[serde(default)]
    pub crons: Vec<String>,
}

/// A version's annotations: `{"workers/message": "...", "workers/tag": "..."}` as WfP
/// spells them (`message` and `tag` are taken too).
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Annotations {
    #[serde(rename = "workers/message", alias = "message")]
    pub message: Option<String>,
    #[serde(rename = "workers/tag", alias = "tag")]
    pub tag: Option<String>,
}

const MAX_MESSAGE_CHARS: usize = 1000;
const MAX_VERSION_TAG_CHARS: usize = 128;

impl Annotations {
    /// A message of at most 1,000 characters and a tag of at most 128, neither with
    /// control characters but a message's line breaks.
    pub fn validate(&self) -> Result<(), DeployError> {
        let check = |what: &str, text: &Option<String>, max: usize, breaks: bool| match text {
            Some(text)
                if text.chars().count() > max
                    || text
                        .chars()
                        .any(|c| c.is_control() && !(breaks && (c == '\n' || c == '\t'))) =>
            {
                Err(DeployError::InvalidAnnotation(format!(
                    "the version {what} must be at most {max} printable characters"
                )))
            }
            _ => Ok(()),
        };
        check("message", &self.message, MAX_MESSAGE_CHARS, true)?;
        check("tag", &self.tag, MAX_VERSION_TAG_CHARS, false)
    }
}

/// A new version of a script, as uploaded.
pub struct NewVersion {
    pub namespace: String,
    pub name: String,
    pub customer_id: Option<String>,
    pub wasm: Bytes,
    /// Replaces the custom tags when given.
    pub tags: Option<Vec<String>>,
    /// The version's bindings when given; the newest version's otherwise.
    pub bindings: Option<Vec<BindingRequest>>,
    pub annotations: Annotations,
    /// Deploy the version to 100 % at once (`deploy=false` uploads without).
    pub deploy: bool,
    /// Replaces the script's schedules when given.
    pub crons: Option<Vec<String>>,
    /// Replaces the queues the script consumes when given.
    pub consumers: Option<Vec<ConsumerSpec>>,
}

#[derive(Clone)]
pub struct Deployer {
    pub store: Arc<Store>,
    pub runtime: Arc<Runtime>,
    pub max_script_bytes: usize,
    /// Versions kept per script.
    pub versions_kept: usize,
    /// Most bytes of components one customer's kept versions may name.
    pub max_version_bytes_per_customer: u64,
    /// Most schedules one script may have.
    pub max_crons_per_script: usize,
    /// Names no customer may upload (the first-party services' by default).
    pub reserved_names: Arc<[String]>,
}

impl Deployer {
    /// Whether a script of `namespace` may be uploaded as `name`: a valid name, and in
    /// the customers namespace not one reserved for the platform.
    pub fn check_name(&self, namespace: &str, name: &str) -> Result<(), DeployError> {
        if !platform_names::valid_name(name) {
            return Err(DeployError::InvalidName(name.to_string()));
        }
        if namespace == CUSTOMER_NAMESPACE && self.reserved_names.iter().any(|r| r == name) {
            return Err(DeployError::Reserved(name.to_string()));
        }
        Ok(())
    }

    /// Uploads a new version of a script (creating the script on its first upload) and,
    /// unless asked not to, deploys it to 100 %. Returns the script, whether it was
    /// created, and the version.
    pub async fn deploy(&self, version: NewVersion) -> Result<Uploaded, DeployError> {
        self.check_name(&version.namespace, &version.name)?;
        if let Some(tags) = &version.tags {
            validate_tags(tags)?;
        }
        version.annotations.validate()?;
        if let Some(crons) = &version.crons {
            crate::schedules::check(crons, self.max_crons_per_script)
                .map_err(DeployError::InvalidSchedule)?;
        }
        if let Some(consumers) = &version.consumers {
            consumers::check(consumers).map_err(DeployError::InvalidConsumer)?;
        }
        if version.wasm.len() > self.max_script_bytes {
            return Err(DeployError::TooLarge {
                size: version.wasm.len(),
                limit: self.max_script_bytes,
            });
        }
        // Refuse early (before compiling) when the name is someone else's; the commit
        // below checks again atomically.
        let this = self.clone();
        let (ns, name, owner) = (
            version.namespace.clone(),
            version.name.clone(),
            version.customer_id.clone(),
        );
        let requested = version.bindings.clone();
        let wanted_queues: Vec<String> = version
            .consumers
            .iter()
            .flatten()
            .map(|c| c.queue.clone())
            .collect();
        let (existing, bindings, stored_crons, stored_consumers) = blocking(move || {
            let stored_crons = this.store.schedules(&ns, &name)?;
            let stored_consumers = this.store.consumers(&ns, &name)?;
            let data_owner = crate::runtime::bindings::data_owner(owner.as_deref());
            for queue in &wanted_queues {
                if let Some(other) = this.store.consumer_of(data_owner, queue)?
                    && other != name
                {
                    return Err(DeployError::InvalidConsumer(format!(
                        "queue `{queue}` already has a consumer: script `{other}`"
                    )));
                }
            }
            let existing = this.store.get_script(&ns, &name, None)?;
            let taken = existing.as_ref().is_some_and(|r| r.customer_id != owner);
            let bindings = match &requested {
                Some(requested) if !taken => {
                    let upload = UploadContext {
                        store: &this.store,
                        namespace: &ns,
                        script: &name,
                        owner: owner.as_deref(),
                    };
                    Some(bindings::check(&upload, requested)?)
                }
                _ => None,
            };
            Ok((
                existing.map(|r| r.customer_id != owner),
                bindings,
                stored_crons,
                stored_consumers,
            ))
        })
        .await?;
        match existing {
            Some(true) => return Err(DeployError::NameTaken(version.name)),
            None if !version.deploy => {
                return Err(DeployError::FirstUploadUndeployed(version.name));
            }
            _ => {}
        }

        let sha256 = sha256_hex(&version.wasm);
        let prepared = self
            .runtime
            .prepare(&self.store, &sha256, &version.wasm)
            .await?;
        let component = prepared.pre.instance_pre().component();
        match &bindings {
            Some(bindings) => {
                self.check_entrypoints(&version.namespace, &version.name, bindings, component)
                    .await?
            }
            None if !crate::runtime::rpc::rpc_imports(component).is_empty() => {
                // The bindings the new version keeps: the newest version's (`put_script`).
                let (store, ns, name) = (
                    self.store.clone(),
                    version.namespace.clone(),
                    version.name.clone(),
                );
                let kept = blocking(move || Ok(store.newest_bindings(&ns, &name)?)).await?;
                self.check_entrypoints(&version.namespace, &version.name, &kept, component)
                    .await?
            }
            None => {}
        }
        let consuming = version.consumers.as_ref().unwrap_or(&stored_consumers);
        if !consuming.is_empty() && crate::runtime::queue_run::queue_handler(component).is_none() {
            return Err(DeployError::MissingQueueExport(version.name));
        }
        let scheduled = version.crons.as_ref().unwrap_or(&stored_crons);
        if !scheduled.is_empty()
            && crate::runtime::scheduled::scheduled_handler(component).is_none()
        {
            return Err(DeployError::MissingScheduledExport(version.name));
        }

        let _writer = self.runtime.index.writer.lock().await;
        let this = self.clone();
        blocking(move || {
            this.store.write_blob(&sha256, &version.wasm)?;
            let result = this.store.put_script(&Upload {
                namespace: &version.namespace,
                name: &version.name,
                customer_id: version.customer_id.as_deref(),
                sha256: &sha256,
                size: version.wasm.len() as u64,
                tags: version.tags.as_deref(),
                bindings: bindings.as_deref(),
                message: version.annotations.message.as_deref(),
                tag: version.annotations.tag.as_deref(),
                deploy: version.deploy,
                keep_versions: this.versions_kept,
                max_customer_bytes: this.max_version_bytes_per_customer,
                crons: version.crons.as_deref(),
                consumers: version.consumers.as_deref().map(|consumers| {
                    let owner = crate::runtime::bindings::data_owner(version.customer_id.as_deref());
                    (owner, consumers)
                }),
            });
            let uploaded = match result {
                Err(StoreError::NameTaken) => return Err(DeployError::NameTaken(version.name)),
                Err(StoreError::NotFound) if !version.deploy => {
                    return Err(DeployError::FirstUploadUndeployed(version.name));
                }
                other => other?,
            };
            if !version.deploy {
                return Ok(uploaded);
            }
            let live = LiveVersion {
                id: uploaded.version.id.clone(),
                sha256: sha256.clone(),
                percentage: 100,
            };
            let bindings = this
                .store
                .stored_bindings(&version.namespace, &version.name, &live.id)?;
            let settings = this
                .store
                .script_settings(&version.namespace, &version.name)?;
            let deployment = uploaded
                .script
                .deployment
                .as_ref()
                .map(|d| d.id.clone())
                .unwrap_or_default();
            let head = ScriptHead {
                namespace: version.namespace,
                name: version.name,
                customer_id: version.customer_id,
                deployment: deployment.clone(),
                versions: vec![live.clone()],
                settings,
            };
            let component =
                ScriptComponent::loaded(&this.runtime, sha256.clone(), this.store.clone(), prepared);
            let script = LoadedScript::new(&this.runtime, &head, &live, bindings, component);
            let deployed = Deployed::new(deployment, vec![(100, Arc::new(script))]);
            this.runtime
                .index
                .insert(&head.namespace, &head.name, deployed, &this.runtime);
            // Scripts with these bytes that could not be loaded (their blob was corrupted,
            // rewritten above) load again. The upload is committed whatever happens here.
            if this.runtime.index.unavailable_with(&sha256)
                && let Err(error) = this.runtime.index.sync_from_store(&this.store, &this.runtime)
            {
                tracing::error!(%error, "reloading the scripts that share the uploaded bytes failed");
            }
            Ok(uploaded)
        })
        .await
    }

    /// Deletes a script (of `owner` when given). False when there was none to delete.
    pub async fn delete(
        &self,
        namespace: &str,
        name: &str,
        owner: Option<&str>,
    ) -> Result<bool, DeployError> {
        let _writer = self.runtime.index.writer.lock().await;
        let this = self.clone();
        let (ns, name, owner) = (
            namespace.to_string(),
            name.to_string(),
            owner.map(String::from),
        );
        blocking(move || {
            let deleted = this.store.delete_script(&ns, &name, owner.as_deref())?;
            if deleted {
                this.runtime.index.remove(&ns, &[name], &this.runtime);
            }
            Ok(deleted)
        })
        .await
    }

    /// Holds off every other change to scripts (uploads, deletes, reloads) while a change
    /// that is no upload (tags) is committed.
    pub async fn lock_changes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.runtime.index.writer.lock().await
    }

    /// Re-reads every script from the store (at start, or after another process changed
    /// it), then loads the components not loaded yet in the background.
    pub async fn sync_from_store(&self) -> Result<(), DeployError> {
        let _writer = self.runtime.index.writer.lock().await;
        let this = self.clone();
        blocking(move || {
            Ok(this
                .runtime
                .index
                .sync_from_store(&this.store, &this.runtime)?)
        })
        .await?;
        self.runtime.warm_up();
        Ok(())
    }
}

/// Runs blocking store or compile work off the async threads.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, DeployError> + Send + 'static,
) -> Result<T, DeployError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| DeployError::Internal(e.to_string()))?
}
