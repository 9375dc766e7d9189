"""The live loop: a source's state and reconnects (`reconnect`), the capture thread and its
frame ring (`capture`), the inference thread (`engine`), the whole assembled and run
(`pipeline`), what comes out (`prediction`, `postprocess`) and the live figures (`metrics`).
"""
