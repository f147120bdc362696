"""Facts about a Pacemaker cluster's configuration."""

from xml.etree import ElementTree

from pyinfra.api import FactBase

SECTIONS = ("crm_config", "rsc_defaults")


class ClusterProperties(FactBase[dict[str, dict[str, str]]]):
    """
    The cluster-wide settings (``crm_config``) and the resources' defaults (``rsc_defaults``) of
    Pacemaker's live configuration, by name; empty where the host runs no cluster yet.

    .. code:: python

        {
            "crm_config": {"stonith-enabled": "true", "no-quorum-policy": "stop", ...},
            "rsc_defaults": {"resource-stickiness": "100"},
        }
    """

    @staticmethod
    def default() -> dict[str, dict[str, str]]:
        return {}

    def requires_command(self) -> str:
        return "cibadmin"

    def command(self) -> str:
        return "cibadmin --query --scope configuration 2>/dev/null || true"

    def process(self, output: list[str]) -> dict[str, dict[str, str]]:
        if not output:
            return {}
        configuration = ElementTree.fromstring("\n".join(output))
        return {
            section: {pair.get("name"): pair.get("value") for found in configuration.iter(section)
                      for pair in found.iter("nvpair")}
            for section in SECTIONS
        }
