"""An example mailprobe plug-in (docs/plugins.md)."""
