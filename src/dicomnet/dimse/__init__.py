"""The DICOM Message Service Element (PS3.7), sans-IO: commands, messages, primitives,
fragmentation/reassembly and the DIMSEServiceProvider."""
