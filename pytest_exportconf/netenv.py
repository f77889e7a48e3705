"""What npm and pip need from the environment behind a proxy, and what to say when TLS or a proxy fails.

A machine behind a TLS-inspecting proxy trusts an extra certificate authority. Node does not read the
system store: it needs ``NODE_EXTRA_CA_CERTS`` (or npm's ``npm_config_cafile``); pip needs ``PIP_CERT``
or ``SSL_CERT_FILE``/``REQUESTS_CA_BUNDLE``. tox (and many CI runners) start commands with a reduced
environment, so these must be passed through (tox: ``passenv``). :data:`PASSENV` lists them.
"""

from __future__ import annotations

import os
import re

# Environment variables (fnmatch patterns) a tox env needs for npm and pip to reach their registries.
PASSENV = (
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy", "all_proxy",
    "NODE_EXTRA_CA_CERTS", "NODE_OPTIONS", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    "PIP_*", "UV_*", "npm_config_*", "NPM_CONFIG_*", "EXPORTCONF_*",
)

_NPM_TLS = re.compile(r"SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_GET_ISSUER_CERT(?:_LOCALLY)?|"
                      r"UNABLE_TO_VERIFY_LEAF_SIGNATURE|CERT_UNTRUSTED|ERR_TLS_CERT_ALTNAME_INVALID|"
                      r"self[- ]signed certificate in certificate chain|unable to get local issuer certificate")
_PIP_TLS = re.compile(r"CERTIFICATE_VERIFY_FAILED|SSLCertVerificationError|SSLError|certificate verify failed")
_PROXY = re.compile(r"ProxyError|Cannot connect to proxy|ECONNREFUSED|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|ECONNRESET|"
                    r"ENETUNREACH|Temporary failure in name resolution|Failed to establish a new connection|"
                    r"407 Proxy Authentication Required")


def _state(*names: str) -> str:
    return ", ".join(f"{n}={'set' if os.environ.get(n) else 'not set'}" for n in names)


def hint(output: str) -> str:
    """A sentence naming the variables to set or pass through, when ``output`` (of npm or pip) shows a TLS
    or proxy failure; empty otherwise."""
    # pip's own words first: its message also quotes OpenSSL's 'self-signed certificate in certificate chain'
    if m := _PIP_TLS.search(output):
        return (f"pip could not verify the index's TLS certificate ({m.group(0)}): point PIP_CERT, SSL_CERT_FILE "
                "or REQUESTS_CA_BUNDLE at the proxy's CA bundle; under tox, pass them through "
                f"(passenv = PIP_* SSL_CERT_FILE REQUESTS_CA_BUNDLE) [now: "
                f"{_state('PIP_CERT', 'SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE')}]")
    if m := _NPM_TLS.search(output):
        return (f"npm could not verify the registry's TLS certificate ({m.group(0)}): a TLS-inspecting proxy "
                "is likely. Point NODE_EXTRA_CA_CERTS at the proxy's CA bundle (an npm `cafile` setting, if any, "
                "replaces Node's CA list: then set npm_config_cafile to a bundle holding it); under tox, pass them "
                "through "
                "(passenv = NODE_EXTRA_CA_CERTS npm_config_*) [now: "
                f"{_state('NODE_EXTRA_CA_CERTS', 'npm_config_cafile')}]")
    if m := _PROXY.search(output):
        return (f"the registry was not reachable ({m.group(0)}): behind a proxy, set HTTPS_PROXY/HTTP_PROXY "
                "(npm also reads npm_config_proxy/npm_config_https_proxy); under tox, pass them through "
                f"(passenv = HTTPS_PROXY HTTP_PROXY NO_PROXY npm_config_*) [now: "
                f"{_state('HTTPS_PROXY', 'HTTP_PROXY', 'npm_config_https_proxy')}]")
    return ""
