//! Everything on the AWS side, in order: the queue before the rules that
//! target it, the node role before the controller role that may pass it.

use super::{Account, Clients, queue, roles, rules};
use crate::{Change, Error, Mode};

/// What the AWS side may vary.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Attach Session Manager's policy to the node role.
    pub ssm: bool,
    /// Give the node role an instance profile.
    pub instance_profile: bool,
}

/// Plans or converges every AWS resource, telling `progress` about each as
/// it is done; stops at the first error (what is done stays done: the next
/// run resumes from there).
pub async fn reconcile(
    account: &Account,
    c: &Clients,
    mode: Mode,
    options: Options,
    progress: &mut dyn FnMut(&Change),
) -> Result<Vec<Change>, Error> {
    let mut out = Vec::new();
    let mut done = |change: Change, out: &mut Vec<Change>| {
        progress(&change);
        out.push(change);
    };
    done(queue::reconcile(account, c, mode).await?, &mut out);
    for change in rules::reconcile(account, c, mode).await? {
        done(change, &mut out);
    }
    for spec in [
        roles::node_role(account, options.ssm),
        roles::controller_role(account),
    ] {
        done(roles::reconcile(account, c, mode, &spec).await?, &mut out);
    }
    if options.instance_profile {
        done(
            roles::reconcile_instance_profile(account, c, mode).await?,
            &mut out,
        );
    }
    Ok(out)
}
