"""The DMP's web site for professionals (`/AccesDirect/<page>[/<INS>]`) as use cases, free of
HTTP and HTML: each page's function takes the services, the card holder's `Principal` (signed in
with their card: direct mode, normal access unless they asked for break-glass) and the page's
parameters, and returns a frozen dataclass the templates render, or raises `Refused`. One module
per page of the DMP's site; `common` holds what they share.

Every page goes through the same policy, rights matrix and trace as the SOAP side: the record's
decision (`policy.record_access`, `policy.matrix_access` and the DMP services' own decisions), the
document-level view (`gate.document_access`), the stored queries and retrieval of ITI-18 and
ITI-43 (`iti18.visible_rows`, `iti43.retrievable`), the lists of TD0.4 and TD1.6, and one trace
row per page, with the action the corresponding transaction traces.
"""

from dmp_xds.services.professional_site.common import (
    AccessLine,
    NeedsAuthorization,
    PatientData,
    Refused,
    break_glass,
    patient_id_of,
    visit_glass_reason,
)
from dmp_xds.services.professional_site.documents import (
    DocumentContent,
    DocumentFilters,
    DocumentLine,
    DocumentList,
    document,
    document_line,
    documents,
    find_documents_query,
    keep,
)
from dmp_xds.services.professional_site.dossier_patient import PatientPage, patient_page
from dmp_xds.services.professional_site.gestion_dmp_patient import (
    RecordManagement,
    block_professional,
    close_record,
    reactivate_record,
    record_management,
)
from dmp_xds.services.professional_site.historique_acces import AccessHistory, access_history
from dmp_xds.services.professional_site.parametrages import CardSettings, PracticeSituation, card_settings
from dmp_xds.services.professional_site.parcours_de_soins import (
    Bucket,
    Timeline,
    TimelineRow,
    Zoom,
    care_pathway,
    timeline_of,
)
from dmp_xds.services.professional_site.tableau_de_bord import (
    Dashboard,
    Existence,
    PageAction,
    allowed_actions,
    authorize_self,
    dashboard,
    existence_test,
)

__all__ = [
    "AccessHistory",
    "AccessLine",
    "Bucket",
    "CardSettings",
    "Dashboard",
    "DocumentContent",
    "DocumentFilters",
    "DocumentLine",
    "DocumentList",
    "Existence",
    "NeedsAuthorization",
    "PageAction",
    "PatientData",
    "PatientPage",
    "PracticeSituation",
    "RecordManagement",
    "Refused",
    "Timeline",
    "TimelineRow",
    "Zoom",
    "access_history",
    "allowed_actions",
    "authorize_self",
    "block_professional",
    "break_glass",
    "card_settings",
    "care_pathway",
    "close_record",
    "dashboard",
    "document",
    "document_line",
    "documents",
    "existence_test",
    "find_documents_query",
    "keep",
    "patient_id_of",
    "visit_glass_reason",
    "patient_page",
    "reactivate_record",
    "record_management",
    "timeline_of",
]
