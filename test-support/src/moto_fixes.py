# FIXES TO MOTO, FOR TESTS ONLY: where moto 5.2 answers differently from EC2
# in a way that would make a correct program look wrong, it is corrected here
# (and nowhere else), each fix with what EC2 does.
#
# 1. CreateFleet takes each launch specification's security groups from
#    "GroupSet", a key launch templates never have, so fleet instances get no
#    group (on-demand) or the VPC's default group (spot). EC2 attaches the
#    template's SecurityGroupIds (or its network interfaces' Groups). Without
#    this every Karpenter node would look security-group drifted and be
#    replaced in a loop.
from moto.ec2.models.fleets import Fleet as _Fleet


def _template_groups(fleet):
    for spec in fleet.launch_specs:
        ref = spec.launch_template_spec
        if spec.group_set or not ref:
            continue
        template = fleet.ec2_backend.get_launch_template(ref["LaunchTemplateId"])
        data = template.get_version(ref.get("Version", template.default_version_number)).data
        groups = list(data.get("SecurityGroupIds") or [])
        for interface in data.get("NetworkInterfaces") or []:
            groups.extend(interface.get("Groups") or [])
        spec.group_set = groups


def _with_template_groups(name):
    original = getattr(_Fleet, name)

    def launch(self, weight):
        _template_groups(self)
        return original(self, weight)

    setattr(_Fleet, name, launch)


for _name in ("create_on_demand_requests", "create_spot_requests"):
    _with_template_groups(_name)
