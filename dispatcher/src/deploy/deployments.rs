//! Deployments and rollbacks: the store commits the new split, then the versions it
//! names are loaded (their artifacts were kept with them: nothing compiles) before the
//! index makes it live, so the next request sees the new split and no request runs a
//! version that is still loading. All under the index's writer lock, like uploads.

use super::{DeployError, Deployer, blocking};
use crate::runtime::warmup::ScriptComponent;
use crate::store::{DeploymentRecord, StoreError, VersionShare};

impl Deployer {
    /// Makes `shares` the live deployment of the script (of `owner` when given).
    pub async fn deploy_versions(
        &self,
        namespace: &str,
        name: &str,
        owner: Option<&str>,
        shares: Vec<VersionShare>,
    ) -> Result<DeploymentRecord, DeployError> {
        let _writer = self.runtime.index.writer.lock().await;
        let (this, ns, script, owner) = self.owned(namespace, name, owner);
        let record = blocking(move || {
            this.store
                .deploy_versions(&ns, &script, owner.as_deref(), &shares, "api")
                .map_err(|e| not_found_as_script(e, &script))
        })
        .await?;
        self.make_live(namespace, name).await?;
        Ok(record)
    }

    /// Rolls the script back to `to`, or to the first version of the deployment before
    /// the live one, at 100 %.
    pub async fn rollback(
        &self,
        namespace: &str,
        name: &str,
        owner: Option<&str>,
        to: Option<String>,
    ) -> Result<DeploymentRecord, DeployError> {
        let _writer = self.runtime.index.writer.lock().await;
        let (this, ns, script, owner) = self.owned(namespace, name, owner);
        let record = blocking(move || {
            this.store
                .rollback(&ns, &script, owner.as_deref(), to.as_deref())
                .map_err(|e| not_found_as_script(e, &script))
        })
        .await?;
        self.make_live(namespace, name).await?;
        Ok(record)
    }

    fn owned(
        &self,
        namespace: &str,
        name: &str,
        owner: Option<&str>,
    ) -> (Deployer, String, String, Option<String>) {
        (
            self.clone(),
            namespace.to_string(),
            name.to_string(),
            owner.map(String::from),
        )
    }

    /// Loads the components of the script's live deployment, then puts it in the index
    /// (caller holds the writer lock). A component that fails to load leaves its script
    /// answering `script_unavailable`, as after a start.
    async fn make_live(&self, namespace: &str, name: &str) -> Result<(), DeployError> {
        let (this, ns, script, _) = self.owned(namespace, name, None);
        let head = blocking(move || Ok(this.store.script_head(&ns, &script)?)).await?;
        let mut warmed = Vec::new();
        for version in head.iter().flat_map(|head| &head.versions) {
            let component = self
                .runtime
                .index
                .component_with(&version.sha256)
                .unwrap_or_else(|| {
                    ScriptComponent::cold(version.sha256.clone(), self.store.clone())
                });
            // A failure is logged by `get` and answered by the script's requests.
            let _ = component.get(&self.runtime).await;
            warmed.push(component);
        }
        let (this, ns, script, _) = self.owned(namespace, name, None);
        blocking(move || {
            Ok(this
                .runtime
                .index
                .refresh(&this.store, &this.runtime, &ns, &script, warmed)?)
        })
        .await
    }
}

/// The store's "not found" of a deployment is the script's.
fn not_found_as_script(error: StoreError, script: &str) -> DeployError {
    match error {
        StoreError::NotFound => DeployError::NotFound(script.to_string()),
        other => DeployError::Store(other),
    }
}
