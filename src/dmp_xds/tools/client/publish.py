"""The ITI-41 (TD2.1) request the client sends, from a submission and its documents.

The DMP wants the submission set signed (XAdES, a signature document and its `signs`
association): `provide_and_register_request` is the one place where that signature is added,
by the `sign_submission` function it is given. Without one, the submission goes unsigned.
"""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree

from dmp_xds.xds.ebrim.encode import encode_submit_objects_request
from dmp_xds.xds.model import Submission

# Takes the submission and its documents (bytes by DocumentEntry id); returns them with the
# submission set's signature added (its DocumentEntry, association and document). Pure.
SubmissionSigner = Callable[[Submission, dict[str, bytes]], tuple[Submission, dict[str, bytes]]]


def provide_and_register_request(
    submission: Submission, documents: dict[str, bytes], sign_submission: SubmissionSigner | None = None
) -> tuple[etree._Element, dict[str, bytes]]:
    """The `lcm:SubmitObjectsRequest` and the documents (by DocumentEntry id) to send."""
    if sign_submission is not None:
        submission, documents = sign_submission(submission, documents)
    return encode_submit_objects_request(submission), documents
