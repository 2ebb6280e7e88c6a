//! AL2's `/etc/eks/bootstrap.sh`, as a shell part of the user data calls it:
//! line continuations joined, words split with the shell's quoting, every
//! option taking the next word as its value, the cluster name the first
//! positional word. Without both `--apiserver-endpoint` and `--b64-cluster-ca`
//! the script would call `eks:DescribeCluster`, which this simulation refuses.

use super::{AgentConfig, BootError, agent_error, apply_kubelet_flag};
use karpenter_controller::userdata::mime;

const AGENT: &str = "bootstrap.sh";

/// Splits a command line the way a POSIX shell does for quotes and escapes.
fn words(line: &str) -> Result<Vec<String>, BootError> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(agent_error(AGENT, "unterminated single quote")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => word.extend(chars.next()),
                        Some(c) => word.push(c),
                        None => return Err(agent_error(AGENT, "unterminated double quote")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.extend(chars.next());
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        out.push(word);
    }
    Ok(out)
}

pub(super) fn read(user_data: &str) -> Result<AgentConfig, BootError> {
    let scripts: Vec<String> = if mime::looks_like_mime(user_data) {
        mime::parse(user_data)
            .map_err(|e| agent_error("cloud-init", e.to_string()))?
            .into_iter()
            .filter(|p| p.media_type() == "text/x-shellscript")
            .map(|p| p.body)
            .collect()
    } else {
        vec![user_data.to_string()]
    };
    let joined: Vec<String> = scripts
        .iter()
        .flat_map(|s| {
            s.replace("\\\n", " ")
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    let call = joined
        .iter()
        .find(|l| l.trim_start().starts_with("/etc/eks/bootstrap.sh"))
        .ok_or_else(|| agent_error(AGENT, "no shell part calls /etc/eks/bootstrap.sh"))?;
    let args = words(call)?;
    let mut config = AgentConfig::default();
    let mut positional = Vec::new();
    let mut cidr = None;
    let mut i = 1;
    while i < args.len() {
        let arg = &args[i];
        if arg.starts_with("--") {
            let value = args.get(i + 1).cloned().unwrap_or_default();
            match arg.as_str() {
                "--apiserver-endpoint" => config.endpoint = value,
                "--b64-cluster-ca" => config.ca_bundle = value,
                "--dns-cluster-ip" => {
                    config.cluster_dns = value.split(',').map(String::from).collect()
                }
                "--service-ipv4-cidr" | "--service-ipv6-cidr" => cidr = Some(value),
                "--local-disks" => config.raid0 = value == "raid0",
                "--kubelet-extra-args" => {
                    for flag in value.split_whitespace() {
                        apply_kubelet_flag(&mut config, flag);
                    }
                }
                _ => {}
            }
            i += 2;
        } else {
            positional.push(arg.clone());
            i += 1;
        }
    }
    config.cluster_name = positional
        .first()
        .cloned()
        .ok_or_else(|| agent_error(AGENT, "ERROR: cluster name is not defined!"))?;
    if config.endpoint.is_empty() || config.ca_bundle.is_empty() {
        return Err(agent_error(
            AGENT,
            "--apiserver-endpoint and --b64-cluster-ca are not both given: the script would call eks:DescribeCluster",
        ));
    }
    if config.cluster_dns.is_empty() {
        config.cluster_dns = cidr
            .as_deref()
            .and_then(karpenter_controller::userdata::dns_ip_from_cidr)
            .map(|d| vec![d])
            .unwrap_or_else(|| vec!["10.100.0.10".into()]);
    }
    Ok(config)
}
