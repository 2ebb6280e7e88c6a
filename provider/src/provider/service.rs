//! The `tfplugin6.Provider` service: schema, validation, plan, apply, read
//! and import, dispatched to the resource and data source types.

use super::config;
use crate::cty;
use crate::proto::tfplugin6 as pb;
use crate::proto::tfplugin6::provider_server::Provider;
use std::collections::HashMap;
use std::sync::Mutex;
use tonic::{Request, Response, Status};

/// The provider's state between calls of one Terraform process.
#[derive(Default)]
pub struct Service {
    config: Mutex<config::Config>,
}

/// An error diagnostic.
pub fn error(summary: impl Into<String>, detail: impl Into<String>) -> pb::Diagnostic {
    pb::Diagnostic {
        severity: pb::diagnostic::Severity::Error as i32,
        summary: summary.into(),
        detail: detail.into(),
        attribute: None,
    }
}

fn unknown_type(kind: &str, name: &str) -> pb::Diagnostic {
    error(
        format!("unknown {kind} type {name:?}"),
        "this version of terraform-provider-karpenter does not have it",
    )
}

#[tonic::async_trait]
impl Provider for Service {
    async fn get_provider_schema(
        &self,
        _: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        Ok(Response::new(pb::get_provider_schema::Response {
            provider: Some(config::schema().schema()),
            resource_schemas: HashMap::new(),
            data_source_schemas: HashMap::new(),
            diagnostics: Vec::new(),
            provider_meta: None,
            server_capabilities: Some(pb::ServerCapabilities {
                plan_destroy: false,
                get_provider_schema_optional: true,
                move_resource_state: false,
            }),
        }))
    }

    async fn validate_provider_config(
        &self,
        _: Request<pb::validate_provider_config::Request>,
    ) -> Result<Response<pb::validate_provider_config::Response>, Status> {
        Ok(Response::new(pb::validate_provider_config::Response {
            diagnostics: Vec::new(),
        }))
    }

    async fn validate_resource_config(
        &self,
        request: Request<pb::validate_resource_config::Request>,
    ) -> Result<Response<pb::validate_resource_config::Response>, Status> {
        let name = request.into_inner().type_name;
        Ok(Response::new(pb::validate_resource_config::Response {
            diagnostics: vec![unknown_type("resource", &name)],
        }))
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<pb::validate_data_resource_config::Request>,
    ) -> Result<Response<pb::validate_data_resource_config::Response>, Status> {
        let name = request.into_inner().type_name;
        Ok(Response::new(pb::validate_data_resource_config::Response {
            diagnostics: vec![unknown_type("data source", &name)],
        }))
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        let name = request.into_inner().type_name;
        Ok(Response::new(pb::upgrade_resource_state::Response {
            upgraded_state: None,
            diagnostics: vec![unknown_type("resource", &name)],
        }))
    }

    async fn configure_provider(
        &self,
        request: Request<pb::configure_provider::Request>,
    ) -> Result<Response<pb::configure_provider::Response>, Status> {
        let request = request.into_inner();
        let ty = config::schema().ty();
        let mut diagnostics = Vec::new();
        match request.config.map(|c| cty::decode(&c.msgpack, &ty)) {
            Some(Ok(value)) => {
                self.config.lock().expect("config lock").value = Some(value);
            }
            Some(Err(e)) => diagnostics.push(error("invalid provider configuration", e.to_string())),
            None => {}
        }
        Ok(Response::new(pb::configure_provider::Response { diagnostics }))
    }

    async fn read_resource(
        &self,
        request: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        let name = request.into_inner().type_name;
        Ok(Response::new(pb::read_resource::Response {
            new_state: None,
            diagnostics: vec![unknown_type("resource", &name)],
            private: Vec::new(),
        }))
    }

    async fn plan_resource_change(
        &self,
        request: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        let name = request.into_inner().type_name;
        Ok(Response::new(pb::plan_resource_change::Response {
            planned_state: None,
            requires_replace: Vec::new(),
            planned_private: Vec::new(),
            diagnostics: vec![unknown_type("resource", &name)],
        }))
    }

    async fn apply_resource_change(
        &self,
        request: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        let name = request.into_inner().type_name;
        Ok(Response::new(pb::apply_resource_change::Response {
            new_state: None,
            private: Vec::new(),
            diagnostics: vec![unknown_type("resource", &name)],
        }))
    }

    async fn import_resource_state(
        &self,
        request: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        let name = request.into_inner().type_name;
        Ok(Response::new(pb::import_resource_state::Response {
            imported_resources: Vec::new(),
            diagnostics: vec![unknown_type("resource", &name)],
        }))
    }

    async fn read_data_source(
        &self,
        request: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        let name = request.into_inner().type_name;
        Ok(Response::new(pb::read_data_source::Response {
            state: None,
            diagnostics: vec![unknown_type("data source", &name)],
        }))
    }

    async fn stop_provider(
        &self,
        _: Request<pb::stop_provider::Request>,
    ) -> Result<Response<pb::stop_provider::Response>, Status> {
        Ok(Response::new(pb::stop_provider::Response {
            error: String::new(),
        }))
    }
}
