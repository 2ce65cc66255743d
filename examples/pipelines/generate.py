#!/usr/bin/env python3
"""Writes the example result sets under examples/pipelines/.

The output is deterministic: uuids are derived from fixed names (uuid5), and
timestamps are fixed epoch milliseconds, so running this again reproduces the
committed files byte for byte.

    python3 examples/pipelines/generate.py
"""

import hashlib
import json
import shutil
import struct
import uuid
import zlib
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

HERE = Path(__file__).resolve().parent

# 2025-01-06T09:00:00Z, 09:05:00Z, 09:10:00Z
GITHUB_UNIT_START = 1736154000000
GITHUB_E2E_START = 1736154300000
GITLAB_API_TIMESTAMP = "2025-01-06T09:10:00"

NAMESPACE = uuid.UUID("6f1d2c9e-4b7a-4e39-9a51-0c7e5d3b8f20")


def fixed_uuid(pipeline, name):
    return str(uuid.uuid5(NAMESPACE, f"{pipeline}/{name}"))


def md5(text):
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def write_json(path, data):
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def fresh_dir(path):
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def png_bytes(width=32, height=20):
    """A small valid RGB PNG (grey page with a red banner), built without PIL."""

    def chunk(tag, data):
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    rows = b""
    for y in range(height):
        rows += b"\x00"
        for _ in range(width):
            rows += b"\xc8\x28\x28" if y < 5 else b"\xee\xee\xee"
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def github_unit():
    """JUnit 5 unit tests of the shop backend (allure-junit5 style)."""
    out = fresh_dir(HERE / "github-unit" / "allure-results")
    pipeline = "github-unit"
    cls = "com.example.shop.CartTest"
    tests = [
        # method, display name, feature, story, severity, allure id, duration ms, status
        ("addsItem", "Adding an item creates a cart line", "Cart", "Add items", "critical", "2001", 14, "passed"),
        ("mergesSameSku", "Adding the same SKU twice merges lines", "Cart", "Add items", "normal", "2002", 9, "passed"),
        ("removesItem", "Removing an item deletes its line", "Cart", "Remove items", "normal", "2003", 7, "passed"),
        ("totalSumsLines", "Total is the sum of all lines", "Cart", "Totals", "critical", "2004", 11, "passed"),
        ("discountCodeIsCaseInsensitive", "Discount codes are case-insensitive", "Checkout", "Discount codes", "critical", "2005", 23, "failed"),
        ("emptyCartTotalIsZero", "Empty cart total is zero", "Cart", "Totals", "minor", "2006", 3, "passed"),
    ]
    setup_start = GITHUB_UNIT_START
    setup_stop = setup_start + 42
    t = setup_stop + 5
    children = []
    for method, title, feature, story, severity, allure_id, duration, status in tests:
        result_uuid = fixed_uuid(pipeline, method)
        children.append(result_uuid)
        full_name = f"{cls}.{method}"
        start, stop = t, t + duration
        t = stop + 2
        result = {
            "uuid": result_uuid,
            "historyId": md5(full_name),
            "testCaseId": md5(full_name),
            "fullName": full_name,
            "name": title,
            "status": status,
            "stage": "finished",
            "start": start,
            "stop": stop,
            "labels": [
                {"name": "ALLURE_ID", "value": allure_id},
                {"name": "epic", "value": "Shop backend"},
                {"name": "feature", "value": feature},
                {"name": "story", "value": story},
                {"name": "severity", "value": severity},
                {"name": "package", "value": "com.example.shop"},
                {"name": "testClass", "value": cls},
                {"name": "testMethod", "value": method},
                {"name": "suite", "value": "CartTest"},
                {"name": "host", "value": "fv-az1272-118"},
                {"name": "thread", "value": "main"},
                {"name": "framework", "value": "junit-platform"},
                {"name": "language", "value": "java"},
            ],
            "links": [],
            "parameters": [],
            "steps": [
                {
                    "name": "Prepare cart",
                    "status": "passed",
                    "stage": "finished",
                    "start": start,
                    "stop": start + 1,
                    "steps": [],
                    "attachments": [],
                    "parameters": [],
                }
            ],
            "attachments": [],
        }
        if status == "failed":
            log_source = f"{fixed_uuid(pipeline, method + '/log')}-attachment.txt"
            (out / log_source).write_text(
                "09:00:00.121 INFO  CheckoutService - applying code save10 to cart 7f3c\n"
                "09:00:00.122 WARN  CheckoutService - unknown discount code save10\n"
                "09:00:00.123 INFO  CheckoutService - total 90.00 EUR (no discount)\n",
                encoding="utf-8",
            )
            result["statusDetails"] = {
                "known": False,
                "muted": False,
                "flaky": False,
                "message": "discount not applied ==> expected: <81.00> but was: <90.00>",
                "trace": "org.opentest4j.AssertionFailedError: discount not applied ==> expected: <81.00> but was: <90.00>\n"
                "\tat org.junit.jupiter.api.AssertionFailureBuilder.build(AssertionFailureBuilder.java:151)\n"
                "\tat org.junit.jupiter.api.Assertions.assertEquals(Assertions.java:1156)\n"
                f"\tat {cls}.{method}(CartTest.java:64)\n",
            }
            result["links"] = [
                {"name": "SHOP-17", "url": "https://tracker.example.com/SHOP-17", "type": "issue"}
            ]
            result["steps"].append(
                {
                    "name": "Apply code \"save10\"",
                    "status": "failed",
                    "stage": "finished",
                    "start": start + 2,
                    "stop": stop,
                    "steps": [],
                    "attachments": [],
                    "parameters": [{"name": "code", "value": "save10"}],
                }
            )
            result["attachments"] = [
                {"name": "service log", "source": log_source, "type": "text/plain"}
            ]
        else:
            result["statusDetails"] = {"known": False, "muted": False, "flaky": False}
        write_json(out / f"{result_uuid}-result.json", result)

    container_uuid = fixed_uuid(pipeline, "container/CartTest")
    write_json(
        out / f"{container_uuid}-container.json",
        {
            "uuid": container_uuid,
            "name": "CartTest",
            "children": children,
            "befores": [
                {
                    "name": "startInMemoryDatabase",
                    "status": "passed",
                    "stage": "finished",
                    "start": setup_start,
                    "stop": setup_stop,
                    "steps": [],
                    "attachments": [],
                    "parameters": [],
                }
            ],
            "afters": [],
            "start": setup_start,
            "stop": t,
        },
    )


def github_e2e():
    """Playwright browser tests of the storefront (allure-playwright style)."""
    out = fresh_dir(HERE / "github-e2e" / "allure-results")
    pipeline = "github-e2e"
    tests = [
        # spec, title, status, duration ms, allure id
        ("checkout.spec.ts", "guest can pay with card", "broken", 30112, "3001"),
        ("checkout.spec.ts", "saved address is prefilled", "passed", 4210, "3002"),
        ("search.spec.ts", "search shows matching products", "passed", 2875, "3003"),
        ("wishlist.spec.ts", "wishlist survives logout", "skipped", 0, "3004"),
    ]
    t = GITHUB_E2E_START
    for spec, title, status, duration, allure_id in tests:
        full_name = f"{spec}#{title}"
        result_uuid = fixed_uuid(pipeline, full_name)
        start, stop = t, t + duration
        t = stop + 150
        result = {
            "uuid": result_uuid,
            "historyId": md5(full_name + ":chromium"),
            "testCaseId": md5(full_name),
            "fullName": full_name,
            "name": title,
            "status": status,
            "stage": "finished",
            "start": start,
            "stop": stop,
            "labels": [
                {"name": "ALLURE_ID", "value": allure_id},
                {"name": "feature", "value": "Storefront"},
                {"name": "parentSuite", "value": "chromium"},
                {"name": "suite", "value": spec},
                {"name": "layer", "value": "e2e"},
                {"name": "host", "value": "fv-az1272-204"},
                {"name": "thread", "value": "pid-2231-worker-0"},
                {"name": "framework", "value": "playwright"},
                {"name": "language", "value": "javascript"},
            ],
            "links": [],
            "parameters": [{"name": "Project", "value": "chromium"}],
            "steps": [],
            "attachments": [],
            "statusDetails": {},
        }
        if status == "broken":
            shot = f"{fixed_uuid(pipeline, full_name + '/screenshot')}-attachment.png"
            (out / shot).write_bytes(png_bytes())
            result["statusDetails"] = {
                "message": "TimeoutError: locator.click: Timeout 30000ms exceeded.\n"
                "Call log:\n  - waiting for getByRole('button', { name: 'Pay now' })",
                "trace": "TimeoutError: locator.click: Timeout 30000ms exceeded.\n"
                "    at /home/runner/work/shop/shop/e2e/checkout.spec.ts:27:52",
            }
            result["steps"] = [
                {
                    "name": "page.goto(/checkout)",
                    "status": "passed",
                    "stage": "finished",
                    "start": start + 10,
                    "stop": start + 850,
                    "steps": [],
                    "attachments": [],
                    "parameters": [],
                },
                {
                    "name": "locator.click(getByRole('button', { name: 'Pay now' }))",
                    "status": "broken",
                    "stage": "finished",
                    "start": start + 860,
                    "stop": stop - 20,
                    "steps": [],
                    "attachments": [],
                    "parameters": [],
                },
            ]
            result["attachments"] = [{"name": "screenshot", "source": shot, "type": "image/png"}]
        elif status == "skipped":
            result["statusDetails"] = {"message": "Test is skipped: wishlist is behind a feature flag"}
        else:
            result["steps"] = [
                {
                    "name": "page.goto(/)",
                    "status": "passed",
                    "stage": "finished",
                    "start": start + 10,
                    "stop": start + 700,
                    "steps": [],
                    "attachments": [],
                    "parameters": [],
                },
                {
                    "name": "expect(page).toHaveURL",
                    "status": "passed",
                    "stage": "finished",
                    "start": start + 710,
                    "stop": stop - 5,
                    "steps": [],
                    "attachments": [],
                    "parameters": [],
                },
            ]
        write_json(out / f"{result_uuid}-result.json", result)


def gitlab_api():
    """API tests reported as JUnit XML (a pytest --junitxml style file)."""
    out = fresh_dir(HERE / "gitlab-api" / "results")
    cases = [
        ("tests.api.test_orders", "test_create_order", "0.211", None),
        ("tests.api.test_orders", "test_get_order", "0.087", None),
        ("tests.api.test_orders", "test_cancel_shipped_order_is_rejected", "0.132",
         ("AssertionError: expected status 409, got 200",
          "def test_cancel_shipped_order_is_rejected(api, shipped_order):\n"
          "        response = api.post(f\"/orders/{shipped_order}/cancel\")\n"
          ">       assert response.status_code == 409, f\"expected status 409, got {response.status_code}\"\n"
          "E       AssertionError: expected status 409, got 200\n\n"
          "tests/api/test_orders.py:48: AssertionError")),
        ("tests.api.test_products", "test_list_products", "0.064", None),
        ("tests.api.test_products", "test_product_not_found", "0.041", None),
    ]
    total = sum(float(c[2]) for c in cases)
    failures = sum(1 for c in cases if c[3])
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<testsuites name="pytest tests">',
        f'  <testsuite name="pytest" errors="0" failures="{failures}" skipped="0" tests="{len(cases)}" '
        f'time="{total:.3f}" timestamp="{GITLAB_API_TIMESTAMP}" hostname="runner-xk2s9q-project-4711-concurrent-0">',
    ]
    for classname, name, time, failure in cases:
        attrs = f"classname={quoteattr(classname)} name={quoteattr(name)} time={quoteattr(time)}"
        if failure is None:
            lines.append(f"    <testcase {attrs} />")
        else:
            message, body = failure
            lines.append(f"    <testcase {attrs}>")
            lines.append(f"      <failure message={quoteattr(message)}>{escape(body)}</failure>")
            lines.append("    </testcase>")
    lines += ["  </testsuite>", "</testsuites>", ""]
    (out / "junit.xml").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    github_unit()
    github_e2e()
    gitlab_api()
