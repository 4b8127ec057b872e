"""The access trace in French words, as the patient's and the professionals' histories show it."""

from __future__ import annotations

from dmp_xds.storage import trail as t

# The trace's actions as the access histories show them.
ACTION_LABELS = {
    t.SEARCH: "recherche de documents",
    t.RETRIEVE: "consultation d'un document",
    t.SUBMIT: "ajout de document",
    t.UPDATE: "modification de document",
    t.DELETE: "suppression de document",
    t.DMP_CREATE: "création du DMP",
    t.DMP_UPDATE: "mise à jour du DMP",
    t.DMP_CLOSE: "fermeture du DMP",
    t.DMP_REOPEN: "réactivation du DMP",
    t.DMP_READ: "consultation des données du DMP",
    t.DMP_LIST: "liste des patients",
    t.HISTORY_READ: "consultation de l'historique",
    t.AUTHORIZATION_GRANT: "autorisation donnée",
    t.AUTHORIZATION_RENEW: "autorisation renouvelée",
    t.AUTHORIZATION_REVOKE: "autorisation retirée",
    t.AUTHORIZATION_SELF: "consentement du patient déclaré",
    t.AUTHORIZATIONS_READ: "consultation des autorisations",
    t.AUTHORIZATION_BLOCK: "professionnel bloqué",
    t.AUTHORIZATION_UNBLOCK: "professionnel débloqué",
    t.WEB_SIGN_IN: "connexion",
    t.WEB_SIGN_OUT: "déconnexion",
}
OUTCOME_LABELS = {t.SUCCESS: "réussi", t.DENIED: "refusé", t.FAILURE: "échec"}
