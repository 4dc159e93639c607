# SPDX-License-Identifier: Apache-2.0
# devcloud: a stand-in for neutron-openvswitch-agent that only sends the agent heartbeat
# (report_state over RPC). With an alive "Open vSwitch agent" on host `devcloud`, ML2's
# openvswitch mechanism driver binds ports (vif_type ovs) for Nova's fake driver.
# No Open vSwitch, no namespaces, no dataplane. Run with /usr/bin/python3 --config-file ...
import sys
import time

from neutron_lib.agent import topics
from neutron_lib import constants as n_const
from neutron_lib import context
from oslo_config import cfg
from oslo_log import log as logging

from neutron.agent import rpc as agent_rpc
from neutron.api.rpc.callbacks import resources
from neutron.common import config as common_config
from neutron.conf.agent import common as agent_config

LOG = logging.getLogger("fake-ovs-agent")


def main():
    common_config.register_common_config_options()
    agent_config.register_agent_state_opts_helper(cfg.CONF)
    common_config.init(sys.argv[1:])
    common_config.setup_logging()
    interval = cfg.CONF.AGENT.report_interval or 20
    state = {
        "binary": n_const.AGENT_PROCESS_OVS,
        "host": cfg.CONF.host,
        "topic": n_const.L2_AGENT_TOPIC,
        "configurations": {
            "bridge_mappings": {"public": "br-ex"},
            "integration_bridge": "br-int",
            "tunnel_types": ["vxlan"],
            "tunneling_ip": "127.0.0.1",
            "l2_population": False,
            "arp_responder_enabled": False,
            "enable_distributed_routing": False,
            "log_agent_heartbeats": False,
            "extensions": [],
            "datapath_type": "system",
            "ovs_capabilities": {},
            "vhostuser_socket_dir": "/var/run/openvswitch",
            "ovs_hybrid_plug": False,
            "baremetal_smartnic": False,
            "devices": 0,
            "in_distributed_mode": False,
        },
        "resource_versions": resources.LOCAL_RESOURCE_VERSIONS,
        "agent_type": n_const.AGENT_TYPE_OVS,
        "start_flag": True,
    }
    rpc = agent_rpc.PluginReportStateAPI(topics.REPORTS)
    ctx = context.get_admin_context_without_session()
    LOG.info("fake OVS agent for host %s: heartbeat every %d s", cfg.CONF.host, interval)
    while True:
        try:
            rpc.report_state(ctx, state, True)
            state.pop("start_flag", None)
            state.pop("resource_versions", None)
        except Exception as e:  # the server is starting or restarting: try again
            LOG.warning("report_state failed: %s", e)
            time.sleep(2)
            continue
        time.sleep(interval)


if __name__ == "__main__":
    main()
