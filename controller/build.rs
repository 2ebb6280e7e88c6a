//! Sets `KARPENTER_COMMIT`, the git revision `--version` reports.

fn main() {
    build_info::emit();
}
