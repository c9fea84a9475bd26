"""The DICOM Upper Layer (PS3.8), sans-IO: PDUs, codec, state machine, connections, negotiation.

Nothing in this package touches sockets, threads, asyncio or the clock: bytes and time go in,
events and bytes come out. :mod:`dicomnet.transport` drives it.
"""
