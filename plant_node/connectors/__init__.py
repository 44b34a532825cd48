"""Line connectors: MQTT (JSON, Sparkplug B) and OPC UA readings into the serving pipeline."""

__all__: list[str] = []
