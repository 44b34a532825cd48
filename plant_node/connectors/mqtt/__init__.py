"""MQTT connector (aiomqtt on paho-mqtt 2, MQTT 5 persistent sessions, QoS 1)."""
