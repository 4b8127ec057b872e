"""The patient's space: sign-in (password, then the code sent or the TOTP app's), the first page,
the account (password, second factor), sign-out. The documents, history and authorizations pages
are added beside these, each reading through services/ as SOAP does."""

from __future__ import annotations

from dmp_xds.security import totp
from dmp_xds.security.vihf import split_cx
from dmp_xds.services import patient_space as ps
from dmp_xds.services import web_signin as signin
from dmp_xds.services.web_signin import SignInRefused
from dmp_xds.storage import web as w
from dmp_xds.transport.web.http import HttpError, Request, Response, redirect
from dmp_xds.transport.web.site import PENDING_COOKIE, Web

SIGN_IN = "/patient/connexion"
CODE = "/patient/connexion/code"
HOME = "/patient/"
ACCOUNT = "/patient/compte"
REPRESENTATION = "/patient/representation"
METHODS = {"EMAIL": "par courriel", "SMS": "par SMS", signin.TOTP: "dans votre application d'authentification"}


def register(web: Web) -> None:
    router = web.router

    @router.get(SIGN_IN)
    def sign_in_form(request: Request) -> Response:
        return web.render(request, "patient/signin.html", message="", login="")

    @router.post(SIGN_IN)
    def sign_in(request: Request) -> Response:
        auth = web.require_auth()
        login = request.field("login")
        try:
            pending = signin.patient_password(auth, login, request.field("password"), request.client, web.now())
        except SignInRefused as refused:
            return web.render(request, "patient/signin.html", refused.status, message=refused.message, login=login)
        response = redirect(CODE)
        response.set_cookie(web.cookie_name(request, PENDING_COOKIE), pending.token, secure=request.tls)
        return response

    @router.get(CODE)
    def code_form(request: Request) -> Response:
        auth = web.require_auth()
        token = request.cookies.get(web.cookie_name(request, PENDING_COOKIE), "")
        challenge = auth.store.challenge(signin.token_hash(token)) if token else None
        if challenge is None:
            return redirect(SIGN_IN)
        return web.render(request, "patient/code.html", message="", method=METHODS.get(challenge.method, ""))

    @router.post(CODE)
    def code(request: Request) -> Response:
        auth = web.require_auth()
        token = request.cookies.get(web.cookie_name(request, PENDING_COOKIE), "")
        try:
            session_token, session = signin.patient_code(auth, token, request.field("code"), request.client, web.now())
        except SignInRefused as refused:
            return web.render(request, "patient/code.html", refused.status, message=refused.message, method="")
        response = redirect(ACCOUNT if session.must_change_password else HOME)
        web.sign_in(request, response, session_token, request.session)
        return response

    @router.get(HOME)
    def home(request: Request) -> Response:
        principal = web.patient(request)
        # Through the policy, as every page: a representative no longer declared is refused here too.
        try:
            record = ps.my_record(web.services, principal, principal.patient_id, web.now())
            # The emergency accesses not yet acknowledged: the first thing a patient should see.
            unread = len(ps.notifications(web.services, principal, principal.patient_id, now=web.now()))
        except ps.Refused as refused:
            if refused.status != 404:  # 404: no DMP (any more), which the page says
                raise HttpError(refused.status, refused.reason) from None
            record, unread = None, 0
        return web.render(
            request,
            "patient/home.html",
            principal=principal,
            record=record,
            unread=unread,
            ins=split_cx(principal.patient_id)[0],
            done="",
        )

    @router.get(REPRESENTATION)
    def representation(request: Request) -> Response:
        """A legal representative's records: the one they act on, and the others to switch to."""
        auth = web.require_auth()
        session = web.session_of(request, w.REPRESENTATIVE)
        records = signin.represented_records(auth, session)
        return web.render(request, "patient/representation.html", records=records, acting_for=session.acting_for)

    @router.post(REPRESENTATION)
    def choose_record(request: Request) -> Response:
        auth = web.require_auth()
        session = web.session_of(request, w.REPRESENTATIVE)
        try:
            signin.act_for(auth, session, request.field("patient"))
        except SignInRefused as refused:
            raise HttpError(refused.status, refused.message) from None
        return redirect(HOME)

    @router.get(ACCOUNT)
    def account(request: Request) -> Response:
        return _account_page(web, request, "", 200)

    @router.post(ACCOUNT + "/mot-de-passe")
    def change_password(request: Request) -> Response:
        auth = web.require_auth()
        session = web.session_of(request, w.PATIENT, w.REPRESENTATIVE)
        try:
            signin.change_password(
                auth, session, request.field("current"), request.field("new"), request.field("confirm")
            )
        except SignInRefused as refused:
            return _account_page(web, request, refused.message, refused.status)
        return redirect(ACCOUNT + "?fait=mot-de-passe")

    @router.post(ACCOUNT + "/totp")
    def enroll(request: Request) -> Response:
        auth = web.require_auth()
        session = web.session_of(request, w.PATIENT, w.REPRESENTATIVE)
        try:
            signin.enroll_totp(auth, session, request.field("secret"), request.field("code"), web.now())
        except SignInRefused as refused:
            return _account_page(web, request, refused.message, refused.status, request.field("secret"))
        return redirect(ACCOUNT + "?fait=totp")

    @router.post(ACCOUNT + "/totp/retrait")
    def remove(request: Request) -> Response:
        auth = web.require_auth()
        signin.remove_totp(auth, web.session_of(request, w.PATIENT, w.REPRESENTATIVE))
        return redirect(ACCOUNT + "?fait=totp-retrait")

    @router.post("/deconnexion")
    def sign_out(request: Request) -> Response:
        """Sign-out of any space; `partout` signs the subject out of every session."""
        auth = web.require_auth()
        session = request.session
        if session is not None:
            signin.sign_out(auth, session, everywhere=request.field("partout") == "1")
        response = redirect("/")
        web.forget(request, response)
        return response


def _account_page(web: Web, request: Request, message: str, status: int, secret: str = "") -> Response:
    auth = web.require_auth()
    session = web.session_of(request, w.PATIENT, w.REPRESENTATIVE)
    enrolled = auth.store.totp(session.subject_kind, session.subject_id) is not None
    account = auth.accounts_of(session.subject_kind).get(session.subject_id)
    login = account.login if account else session.subject_id
    secret = secret or totp.new_secret()
    return web.render(
        request,
        "patient/account.html",
        status,
        message=message,
        done=request.query.get("fait", ""),
        must_change=session.must_change_password,
        enrolled=enrolled,
        secret=secret,
        uri=totp.otpauth_uri(secret, login, signin.ISSUER),
    )
