//! Which provider converges which resource type.

use vigo_shared::bundle::ResourceKind;

use crate::providers::Provider;
use crate::providers::cron::CronProvider;
use crate::providers::directory::DirectoryProvider;
use crate::providers::exec::ExecProvider;
use crate::providers::file::FileProvider;
use crate::providers::group::GroupProvider;
use crate::providers::package::PackageProvider;
use crate::providers::service::ServiceProvider;
use crate::providers::symlink::SymlinkProvider;
use crate::providers::user::UserProvider;

/// Providers by resource type.
#[derive(Default)]
pub struct Registry {
    providers: Vec<(ResourceKind, Box<dyn Provider>)>,
}

impl Registry {
    /// No providers.
    pub fn empty() -> Registry {
        Registry::default()
    }

    /// Adds (or replaces) the provider for `kind`.
    pub fn with(mut self, kind: ResourceKind, provider: Box<dyn Provider>) -> Registry {
        self.providers.retain(|(k, _)| *k != kind);
        self.providers.push((kind, provider));
        self
    }

    /// Every provider this agent has.
    pub fn standard() -> Registry {
        Registry::empty()
            .with(ResourceKind::File, Box::new(FileProvider))
            .with(ResourceKind::Directory, Box::new(DirectoryProvider))
            .with(ResourceKind::Symlink, Box::new(SymlinkProvider))
            .with(ResourceKind::Exec, Box::new(ExecProvider))
            .with(ResourceKind::Cron, Box::new(CronProvider))
            .with(ResourceKind::User, Box::new(UserProvider))
            .with(ResourceKind::Group, Box::new(GroupProvider))
            .with(ResourceKind::Package, Box::new(PackageProvider))
            .with(ResourceKind::Service, Box::new(ServiceProvider))
    }

    /// The provider for `kind`.
    pub fn get(&self, kind: ResourceKind) -> Option<&dyn Provider> {
        self.providers
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, p)| p.as_ref())
    }
}
