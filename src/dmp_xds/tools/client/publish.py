"""The ITI-41 (TD2.1) request the client sends, from a submission and its documents.

The DMP wants the submission set signed (XAdES: a signature document, its DocumentEntry, and
its HasMember and `signs` associations): `provide_and_register_request` is the one place where
that signature is added, by the `sign_submission` function it is given. Without one, the
submission goes unsigned.
"""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree

from dmp_xds.xds.ebrim.encode import encode_submit_objects_request
from dmp_xds.xds.model import Submission

# Signs the submission set of an lcm:SubmitObjectsRequest, adding the signature's DocumentEntry
# and associations to the request, from the documents' bytes by DocumentEntry id; returns the
# documents to send, the signature document among them.
SubmissionSigner = Callable[[etree._Element, dict[str, bytes]], dict[str, bytes]]


def provide_and_register_request(
    submission: Submission, documents: dict[str, bytes], sign_submission: SubmissionSigner | None = None
) -> tuple[etree._Element, dict[str, bytes]]:
    """The `lcm:SubmitObjectsRequest` and the documents (by DocumentEntry id) to send."""
    request = encode_submit_objects_request(submission)
    if sign_submission is not None:
        documents = sign_submission(request, dict(documents))
    return request, documents
