"""Traffic lab: real servers, clients and attack tools in network namespaces, captured and labelled."""

from pktlstm.lab.netns import LabError
from pktlstm.lab.runner import LabConfig, LabResult, RunRecord, run_lab
from pktlstm.lab.scenario import Action, Host, Scenario, load_scenario, shipped_scenarios

__all__ = [
    "Action",
    "Host",
    "LabConfig",
    "LabError",
    "LabResult",
    "RunRecord",
    "Scenario",
    "load_scenario",
    "run_lab",
    "shipped_scenarios",
]
