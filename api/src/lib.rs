//! ferrofluid's API: Fluid-compatible custom resources (`data.fluid.io/v1alpha1`), the keys and names
//! derived from them, and CRD generation. Pure: no I/O, no async runtime, no client.

pub mod common;
pub mod crd;
pub mod dataload;
pub mod datamigrate;
pub mod dataprocess;
pub mod dataset;
pub mod juicefs_runtime;
pub mod keys;
pub mod naming;
pub mod operation;
pub mod options;
pub mod quota;
pub mod redact;
pub mod sharing;

pub use common::{CacheStates, Condition, EncryptOption};
pub use dataload::{DataLoad, DataLoadSpec};
pub use datamigrate::{DataMigrate, DataMigrateSpec};
pub use dataprocess::{DataProcess, DataProcessSpec};
pub use dataset::{Dataset, DatasetPhase, DatasetSpec, DatasetStatus, Mount};
pub use juicefs_runtime::{JuiceFSRuntime, JuiceFSRuntimeSpec, JuiceFSRuntimeStatus, Level, MediumType, RuntimePhase};
pub use keys::DatasetKey;
pub use operation::{OperationPhase, OperationStatus};
