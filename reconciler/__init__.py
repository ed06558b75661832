"""reconciler: schema-as-code for ActiveCampaign Custom Objects."""

__version__ = "0.1.0"
