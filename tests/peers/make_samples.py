#!/usr/bin/env python3
"""Sample PDFs for kyso's PDF tests: a Vietnamese administrative decision and its variants.

    make_samples.py --fonts DIR --out DIR

writes into --out:
  decision.pdf            one A4 page: the national motto header, "Số: 123/QĐ-UBND", the title
                          "QUYẾT ĐỊNH", a body, and the signature block at the bottom right
                          ("CHỦ TỊCH", room for the signature, "Nguyễn Văn An")
  decision-large.pdf      the same first page, then pages of text and a page holding an
                          incompressible (pseudo-random, seeded) image: about 1 MiB
  decision-objstm.pdf     decision.pdf rewritten by `qpdf --object-streams=generate`
                          (cross-reference stream and object streams)
  decision-encrypted.pdf  decision.pdf encrypted by `qpdf --encrypt` (AES-256, empty user
                          password, owner password "kyso-owner")
  samples.json            the files, and where the signature block is (below)

and prints samples.json. Coordinates are PDF points in the default user space of page 1
(origin bottom left): for the title line and the name line, the baseline `y`, the left `x`,
the centre `x_center`, the `width` and `font_size`; `signature_box` [x1, y1, x2, y2] is the
free space between them where a signature image belongs. Pages count from 1.

The output is deterministic (reportlab invariant mode, a seeded generator for the image,
`qpdf --deterministic-id`), except for the encrypted copy, whose salts are random.
"""

import argparse
import io
import json
import os
import random
import subprocess
import sys

from PIL import Image
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader, simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

REGULAR = "LiberationSerif"
BOLD = "LiberationSerif-Bold"

HEADER_LEFT = ["ỦY BAN NHÂN DÂN", "TỈNH KHÁNH HÒA"]
MOTTO = ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc"]
NUMBER = "Số: 123/QĐ-UBND"
PLACE_DATE = "Khánh Hòa, ngày 15 tháng 3 năm 2026"
TITLE = "QUYẾT ĐỊNH"
SUBJECT = "Về việc phê duyệt Kế hoạch chuyển đổi số tỉnh Khánh Hòa năm 2026"
AUTHORITY = "CHỦ TỊCH ỦY BAN NHÂN DÂN TỈNH KHÁNH HÒA"
GROUNDS = [
    "Căn cứ Luật Tổ chức chính quyền địa phương ngày 19 tháng 6 năm 2015;",
    "Căn cứ Luật Giao dịch điện tử ngày 22 tháng 6 năm 2023;",
    "Căn cứ Nghị định số 30/2020/NĐ-CP ngày 05 tháng 3 năm 2020 của Chính phủ về công tác "
    "văn thư;",
    "Theo đề nghị của Giám đốc Sở Khoa học và Công nghệ.",
]
DECIDES = "QUYẾT ĐỊNH:"
ARTICLES = [
    ("Điều 1.", "Phê duyệt Kế hoạch chuyển đổi số tỉnh Khánh Hòa năm 2026 kèm theo Quyết định "
     "này, trong đó ưu tiên ký số văn bản điện tử, lưu trữ hồ sơ số và kết nối dữ liệu giữa "
     "các cơ quan nhà nước trên địa bàn tỉnh."),
    ("Điều 2.", "Quyết định này có hiệu lực thi hành kể từ ngày ký."),
    ("Điều 3.", "Chánh Văn phòng Ủy ban nhân dân tỉnh, Giám đốc các sở, ban, ngành và Chủ tịch "
     "Ủy ban nhân dân các huyện, thị xã, thành phố chịu trách nhiệm thi hành Quyết định này."),
]
RECIPIENTS = ["Nơi nhận:", "- Như Điều 3;", "- Thường trực Tỉnh ủy;", "- Lưu: VT."]
SIGNER_TITLE = "CHỦ TỊCH"
SIGNER_NAME = "Nguyễn Văn An"

PAGE_W, PAGE_H = A4
MARGIN_L, MARGIN_R = 85.0, 57.0


def register_fonts(font_dir):
    pdfmetrics.registerFont(TTFont(REGULAR, os.path.join(font_dir, "LiberationSerif-Regular.ttf")))
    pdfmetrics.registerFont(TTFont(BOLD, os.path.join(font_dir, "LiberationSerif-Bold.ttf")))


def centred(c, font, size, x, y, text, underline=False):
    c.setFont(font, size)
    c.drawCentredString(x, y, text)
    w = pdfmetrics.stringWidth(text, font, size)
    if underline:
        c.setLineWidth(0.6)
        c.line(x - w / 2, y - 3, x + w / 2, y - 3)
    return {"x": round(x - w / 2, 2), "x_center": round(x, 2), "y": round(y, 2),
            "width": round(w, 2), "font_size": size, "text": text}


def wrapped(c, font, size, x, y, text, width, leading, first_indent=0.0):
    """Draws `text` wrapped to `width`; returns the baseline below the last line."""
    c.setFont(font, size)
    lines = simpleSplit(text, font, size, width - first_indent)
    first = True
    for line in lines:
        c.drawString(x + (first_indent if first else 0.0), y, line)
        first = False
        y -= leading
    return y


def draw_decision(c):
    """Page 1: the decision. Returns the signature block's coordinates."""
    left_c, right_c = 150.0, 400.0
    y = PAGE_H - 60
    centred(c, REGULAR, 12, left_c, y, HEADER_LEFT[0])
    centred(c, BOLD, 12, left_c, y - 15, HEADER_LEFT[1], underline=True)
    centred(c, REGULAR, 13, left_c, y - 40, NUMBER)
    centred(c, BOLD, 12, right_c, y, MOTTO[0])
    centred(c, BOLD, 13, right_c, y - 15, MOTTO[1], underline=True)
    centred(c, REGULAR, 13, right_c, y - 40, PLACE_DATE)

    y -= 85
    centred(c, BOLD, 14, PAGE_W / 2, y, TITLE)
    centred(c, BOLD, 13, PAGE_W / 2, y - 17, SUBJECT)
    centred(c, BOLD, 13, PAGE_W / 2, y - 45, AUTHORITY)

    width = PAGE_W - MARGIN_L - MARGIN_R
    y -= 75
    for g in GROUNDS:
        y = wrapped(c, REGULAR, 13, MARGIN_L, y, g, width, 17, first_indent=28)
    y -= 6
    centred(c, BOLD, 13, PAGE_W / 2, y, DECIDES)
    y -= 22
    for head, text in ARTICLES:
        c.setFont(BOLD, 13)
        c.drawString(MARGIN_L + 28, y, head)
        hw = pdfmetrics.stringWidth(head + " ", BOLD, 13)
        y = wrapped(c, REGULAR, 13, MARGIN_L, y, text, width, 17, first_indent=28 + hw)
        y -= 4

    # The signature block: title, 90 pt of room for the signature image, the name.
    block_top = min(y - 20, 250.0)
    c.setFont(BOLD, 12)
    c.drawString(MARGIN_L, block_top, RECIPIENTS[0])
    ry = block_top - 14
    for r in RECIPIENTS[1:]:
        c.setFont(REGULAR, 11)
        c.drawString(MARGIN_L, ry, r)
        ry -= 13
    sig_c = 420.0
    title = centred(c, BOLD, 13, sig_c, block_top, SIGNER_TITLE)
    name = centred(c, BOLD, 13, sig_c, block_top - 110, SIGNER_NAME)
    box = [round(sig_c - 75, 2), round(name["y"] + 13 + 4, 2),
           round(sig_c + 75, 2), round(title["y"] - 6, 2)]
    return {"page": 1, "title": title, "name": name, "signature_box": box}


def make_decision(path, extra_pages=None):
    c = canvas.Canvas(path, pagesize=A4, invariant=1, pageCompression=1)
    c.setTitle("Quyết định số 123/QĐ-UBND")
    c.setAuthor("Ủy ban nhân dân tỉnh Khánh Hòa")
    c.setSubject(SUBJECT)
    c.setCreator("kyso tests/peers/make_samples.py")
    block = draw_decision(c)
    c.showPage()
    if extra_pages:
        extra_pages(c)
    c.save()
    return block


def large_pages(c):
    """Pages of text, then one incompressible image, to reach about 1 MiB."""
    rng = random.Random(20260315)
    width = PAGE_W - MARGIN_L - MARGIN_R
    words = ("chuyển đổi số văn bản điện tử chữ ký số cơ quan nhà nước dữ liệu hồ sơ "
             "thủ tục hành chính dịch vụ công trực tuyến kết nối chia sẻ an toàn thông tin "
             "Khánh Hòa Ủy ban nhân dân").split()
    for page in range(2, 10):
        y = PAGE_H - 70
        c.setFont(BOLD, 13)
        c.drawString(MARGIN_L, y, f"Phụ lục {page - 1}: Nội dung chi tiết của Kế hoạch")
        y -= 24
        while y > 70:
            para = " ".join(rng.choice(words) for _ in range(60)).capitalize() + "."
            y = wrapped(c, REGULAR, 12, MARGIN_L, y, para, width, 15, first_indent=28) - 6
        c.showPage()
    side = 500  # 500 x 500 x 3 bytes of noise: about 0.7 MiB that no filter shrinks
    img = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    c.setFont(BOLD, 13)
    c.drawString(MARGIN_L, PAGE_H - 70, "Phụ lục ảnh: bản đồ hiện trạng (dữ liệu mẫu)")
    c.drawImage(ImageReader(img), MARGIN_L, PAGE_H - 100 - 420, width=420, height=420)
    c.showPage()


def qpdf(*args):
    r = subprocess.run(["qpdf", *args], capture_output=True, text=True)
    # qpdf exits 3 for warnings: the copy is written, but a sample must be clean.
    if r.returncode != 0:
        sys.exit(f"make_samples: qpdf {' '.join(args)} failed ({r.returncode}): {r.stderr}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fonts", required=True, help="directory with LiberationSerif-*.ttf")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    register_fonts(a.fonts)

    out = lambda name: os.path.join(a.out, name)  # noqa: E731
    block = make_decision(out("decision.pdf"))
    make_decision(out("decision-large.pdf"), extra_pages=large_pages)
    qpdf("--deterministic-id", "--object-streams=generate", out("decision.pdf"),
         out("decision-objstm.pdf"))
    qpdf("--encrypt", "", "kyso-owner", "256", "--", out("decision.pdf"),
         out("decision-encrypted.pdf"))

    result = {
        "files": {
            "decision": "decision.pdf",
            "large": "decision-large.pdf",
            "object-streams": "decision-objstm.pdf",
            "encrypted": "decision-encrypted.pdf",
        },
        "encrypted_owner_password": "kyso-owner",
        "signature_block": block,
    }
    with open(out("samples.json"), "w") as f:
        json.dump(result, f, ensure_ascii=False, indent=1)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
