"""pyserial URL handlers of this package (registered in ``serial.protocol_handler_packages``)."""
