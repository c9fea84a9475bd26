"""Transfer syntax conversion for every sender: whatever the peer accepts, the instance gets there.

Theory of operation
-------------------
One rule, used by ``Association.send_c_store``, ``dicomnet storescu``, the C-GET/C-MOVE
sub-operations of every SCP and the archive: an instance goes **byte for byte** when the peer
accepted its transfer syntax, and **converted** when it did not (PS3.4 B.4.1 lets a sender pick
any syntax the association accepted; DCMTK's storescu and Orthanc do the same).

* :mod:`~dicomnet.transcode.syntax`: the families of transfer syntaxes and what converting
  between them needs (PS3.5 section 10, Annex A);
* :mod:`~dicomnet.transcode.select`: the presentation contexts a sender proposes (one per
  syntax) and the accepted syntax each instance is sent in;
* :mod:`~dicomnet.transcode.elements`: the streaming element-by-element re-encoder between the
  uncompressed syntaxes (PS3.5 section 7);
* :mod:`~dicomnet.transcode.conversion`: conversion of a whole encoded data set, streamed for the
  native syntaxes, through pydicom's pixel codecs (the ``dicomnet[codecs]`` extra) otherwise;
* :mod:`~dicomnet.transcode.instance`: what a file to be sent is (its syntax, the SOP Class and
  Instance UIDs of its data set), with or without File Meta Information.
"""

from dicomnet.transcode.conversion import convert
from dicomnet.transcode.elements import ConversionError
from dicomnet.transcode.instance import InstanceFile, UnsendableFile, inspect_file
from dicomnet.transcode.select import propose_syntaxes, rank_targets
from dicomnet.transcode.syntax import CODECS_HINT, name_of

__all__ = [
    "CODECS_HINT",
    "ConversionError",
    "InstanceFile",
    "UnsendableFile",
    "convert",
    "inspect_file",
    "name_of",
    "propose_syntaxes",
    "rank_targets",
]
