"""pktlstm: packet-level malicious traffic detection with an LSTM over header words."""

__version__ = "0.1.0"

__all__ = ["__version__"]
