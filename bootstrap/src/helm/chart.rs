//! The chart in `charts/karpenter`, compiled into the binary so the
//! bootstrap installs exactly what `helm install charts/karpenter` would.

use serde_json::Value;

/// One file of the chart: its path inside the chart and its text.
#[derive(Debug, Clone, Copy)]
pub struct ChartFile {
    /// Path relative to the chart's folder (`templates/deployment.yaml`).
    pub path: &'static str,
    /// The file's text.
    pub text: &'static str,
}

macro_rules! chart_files {
    ($($path:literal),* $(,)?) => {
        /// Every file of the chart; a test checks the list against the folder.
        pub const FILES: &[ChartFile] = &[
            $(ChartFile { path: $path, text: include_str!(concat!("../../../charts/karpenter/", $path)) },)*
        ];
    };
}

chart_files!(
    ".helmignore",
    "Chart.yaml",
    "README.md",
    "values.yaml",
    "crds/autoscaling.x-k8s.io_capacitybuffers.yaml",
    "crds/karpenter.k8s.aws_ec2nodeclasses.yaml",
    "crds/karpenter.sh_nodeclaims.yaml",
    "crds/karpenter.sh_nodeoverlays.yaml",
    "crds/karpenter.sh_nodepools.yaml",
    "templates/_helpers.tpl",
    "templates/crds.yaml",
    "templates/deployment.yaml",
    "templates/poddisruptionbudget.yaml",
    "templates/rbac.yaml",
    "templates/service.yaml",
    "templates/serviceaccount.yaml",
    "templates/servicemonitor.yaml",
);

/// The chart, parsed the way Helm's loader splits it.
#[derive(Debug, Clone)]
pub struct Chart {
    /// `Chart.yaml` as JSON (`name`, `version`, `appVersion`, ...).
    pub metadata: Value,
    /// `values.yaml`: the defaults user values are merged over.
    pub values: Value,
    /// Files under `templates/`, in path order.
    pub templates: Vec<ChartFile>,
    /// Every other file (the CRDs in `crds/`, `.helmignore`), in path order.
    pub files: Vec<ChartFile>,
}

impl Chart {
    /// The chart compiled into this binary.
    pub fn embedded() -> Chart {
        Chart::from_files(FILES).expect("the embedded chart parses (tested)")
    }

    /// Splits `files` into metadata, default values, templates and files.
    pub fn from_files(files: &[ChartFile]) -> Result<Chart, crate::Error> {
        Self::split_files(files).map_err(|message| crate::Error::Chart { message })
    }

    fn split_files(files: &[ChartFile]) -> Result<Chart, String> {
        let yaml = |file: &str| -> Result<Value, String> {
            let found = files.iter().find(|f| f.path == file);
            let text = found
                .ok_or_else(|| format!("the chart has no {file}"))?
                .text;
            serde_norway::from_str(text).map_err(|e| format!("{file}: {e}"))
        };
        let metadata = yaml("Chart.yaml")?;
        let values = yaml("values.yaml")?;
        let mut templates: Vec<ChartFile> = files
            .iter()
            .filter(|f| f.path.starts_with("templates/"))
            .copied()
            .collect();
        templates.sort_by_key(|f| f.path);
        let mut rest: Vec<ChartFile> = files
            .iter()
            .filter(|f| {
                !f.path.starts_with("templates/") && !matches!(f.path, "Chart.yaml" | "values.yaml")
            })
            .copied()
            .collect();
        rest.sort_by_key(|f| f.path);
        Ok(Chart {
            metadata,
            values,
            templates,
            files: rest,
        })
    }

    /// The chart's name (`karpenter`).
    pub fn name(&self) -> &str {
        self.metadata["name"].as_str().unwrap_or_default()
    }

    /// The chart's version.
    pub fn version(&self) -> &str {
        self.metadata["version"].as_str().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_compiled_list_is_every_file_of_the_chart_folder() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/karpenter");
        let mut on_disk = Vec::new();
        let mut folders = vec![root.clone()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    folders.push(path);
                } else {
                    let relative = path.strip_prefix(&root).unwrap();
                    on_disk.push(relative.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        on_disk.sort();
        let mut listed: Vec<String> = FILES.iter().map(|f| f.path.to_string()).collect();
        listed.sort();
        assert_eq!(
            listed, on_disk,
            "chart_files! in chart.rs must list the chart's files"
        );
    }

    #[test]
    fn the_embedded_chart_has_its_metadata_values_and_templates() {
        let chart = Chart::embedded();
        assert_eq!(chart.name(), "karpenter");
        assert_eq!(chart.version(), env!("CARGO_PKG_VERSION"));
        assert_eq!(chart.values["replicas"], 2);
        assert!(
            chart
                .templates
                .iter()
                .any(|t| t.path == "templates/deployment.yaml")
        );
        assert!(chart.files.iter().any(|f| f.path.starts_with("crds/")));
    }
}
