//! [`Health`]: the `grpc.health.v1` service and the names it reports.
//!
//! * `""` (overall), `portolan.v1.PortRegistryService` and `readiness`:
//!   NOT_SERVING until the first registry is loaded, SERVING after,
//!   NOT_SERVING again once shutdown begins. (tonic-health registers `""`
//!   as SERVING on creation; it is turned NOT_SERVING before the server
//!   accepts anything.)
//! * `liveness`: SERVING for as long as the process answers.
//!
//! The same readiness is read by the admin listener's `/readyz`
//! ([`Health::is_serving`]), so the HTTP and gRPC probes never disagree.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

/// Names whose status follows readiness.
pub const READINESS_NAMES: [&str; 3] = ["", "portolan.v1.PortRegistryService", "readiness"];

/// The name Kubernetes liveness probes ask for.
pub const LIVENESS_NAME: &str = "liveness";

/// The health reporter and its service.
#[derive(Debug, Clone)]
pub struct Health {
    reporter: HealthReporter,
    service: HealthServer<HealthService>,
    serving: Arc<AtomicBool>,
}

impl Health {
    /// A health service reporting NOT_SERVING for every readiness name and
    /// SERVING for liveness.
    pub async fn start() -> Self {
        let reporter = HealthReporter::new();
        for name in READINESS_NAMES {
            reporter
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        reporter
            .set_service_status(LIVENESS_NAME, ServingStatus::Serving)
            .await;
        let service = HealthServer::new(HealthService::from_health_reporter(reporter.clone()));
        Self {
            reporter,
            service,
            serving: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The gRPC service (to add to the router).
    pub fn service(&self) -> HealthServer<HealthService> {
        self.service.clone()
    }

    /// Whether the readiness names report SERVING.
    pub fn is_serving(&self) -> bool {
        self.serving.load(Ordering::Acquire)
    }

    /// Sets every readiness name to SERVING or NOT_SERVING.
    pub async fn set_serving(&self, serving: bool) {
        self.serving.store(serving, Ordering::Release);
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for name in READINESS_NAMES {
            self.reporter.set_service_status(name, status).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus as Wire;
    use tonic_health::pb::health_server::Health as _;

    use super::*;

    async fn status(health: &Health, name: &str) -> i32 {
        let request = tonic::Request::new(HealthCheckRequest {
            service: name.to_string(),
        });
        HealthService::from_health_reporter(health.reporter.clone())
            .check(request)
            .await
            .unwrap()
            .into_inner()
            .status
    }

    #[tokio::test]
    async fn readiness_starts_not_serving_and_follows_set_serving() {
        let health = Health::start().await;
        for name in READINESS_NAMES {
            assert_eq!(
                status(&health, name).await,
                Wire::NotServing as i32,
                "{name:?}"
            );
        }
        assert_eq!(status(&health, LIVENESS_NAME).await, Wire::Serving as i32);
        assert!(!health.is_serving());
        health.set_serving(true).await;
        assert!(health.is_serving());
        for name in READINESS_NAMES {
            assert_eq!(
                status(&health, name).await,
                Wire::Serving as i32,
                "{name:?}"
            );
        }
    }
}
