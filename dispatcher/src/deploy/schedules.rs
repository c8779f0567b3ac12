//! Setting a script's schedules apart from an upload (`PUT /script/{name}/schedules`, the
//! CLI): checked as an upload's are (valid, few enough, and only for a script whose
//! every live version exports `platform:worker/scheduled`), committed under the index's
//! writer lock so no upload slips in between the check and the commit.

use super::{DeployError, Deployer, blocking};
use crate::runtime::scheduled::scheduled_handler;
use crate::store::StoreError;

impl Deployer {
    /// Replaces the schedules of the script (of `owner` when given).
    pub async fn set_schedules(
        &self,
        namespace: &str,
        name: &str,
        owner: Option<&str>,
        crons: Vec<String>,
    ) -> Result<(), DeployError> {
        crate::schedules::check(&crons, self.max_crons_per_script)
            .map_err(DeployError::InvalidSchedule)?;
        let _writer = self.runtime.index.writer.lock().await;
        if !crons.is_empty() {
            let deployed = self
                .runtime
                .index
                .deployed(namespace, name)
                .ok_or_else(|| DeployError::NotFound(name.to_string()))?;
            for version in deployed.all() {
                let exports = match version.component.get(&self.runtime).await {
                    Ok(pre) => scheduled_handler(pre.instance_pre().component()).is_some(),
                    Err(_) => false,
                };
                if !exports {
                    return Err(DeployError::MissingScheduledExport(name.to_string()));
                }
            }
        }
        let (this, ns, script, owner) = (
            self.clone(),
            namespace.to_string(),
            name.to_string(),
            owner.map(String::from),
        );
        blocking(move || {
            match this
                .store
                .set_schedules(&ns, &script, owner.as_deref(), &crons)
            {
                Err(StoreError::NotFound) => Err(DeployError::NotFound(script)),
                other => Ok(other?),
            }
        })
        .await
    }
}
