"""Capture input: pcap, pcapng and live interfaces into columnar PacketBatch chunks."""
