"""Every text of the portal in Bahasa Indonesia (first) and English, and the API's errors in both."""

from __future__ import annotations

import functools
import re
from typing import Any

from ksbb_portal.formatting import number

LANGUAGES = ("id", "en")

#: key -> (Bahasa Indonesia, English). Placeholders in braces are filled by `text`.
MESSAGES: dict[str, tuple[str, str]] = {
    # -- frame ------------------------------------------------------------------------------------------
    "portal": ("Portal KSBB", "KSBB portal"),
    "skip": ("Langsung ke isi", "Skip to content"),
    "menu": ("Menu utama", "Main menu"),
    "other_language": ("English", "Bahasa Indonesia"),
    "switch_language": ("Ganti bahasa", "Change language"),
    "sign_in": ("Masuk", "Sign in"),
    "sign_up": ("Daftar", "Sign up"),
    "sign_out": ("Keluar", "Sign out"),
    "signed_in_as": ("Masuk sebagai {name} ({role})", "Signed in as {name} ({role})"),
    "public_page": ("Halaman publik", "Public page"),
    "api_docs": ("Dokumentasi API", "API documentation"),
    "footer_note": ("Semua informasi program terbuka untuk publik, tanpa data pribadi.",
                    "All programme information is public, without personal data."),
    "nav_needs": ("Kebutuhan", "Needs"),
    "nav_how": ("Cara memberi", "How to give"),
    "nav_my_pledges": ("Janji saya", "My pledges"),
    "nav_offers": ("Tawaran saya", "My offers"),
    "nav_profile": ("Profil", "Profile"),
    "nav_queue": ("Verifikasi", "Verification"),
    "nav_recipients": ("Penerima", "Recipients"),
    "nav_pledges_org": ("Janji masuk", "Incoming pledges"),
    "nav_reports": ("Laporan", "Reports"),
    "nav_webhooks": ("Webhook", "Webhooks"),
    "nav_staff": ("Staf", "Staff"),
    "nav_unit": ("Unit saya", "My unit"),
    "nav_unit_needs": ("Kebutuhan kami", "Our needs"),
    "nav_unit_pledges": ("Janji untuk kami", "Pledges to us"),
    "nav_admin": ("Ringkasan program", "Programme overview"),
    "nav_organisations": ("Lembaga", "Organisations"),
    "role_admin": ("administrator", "administrator"),
    "role_facilitator": ("fasilitator", "facilitator"),
    "role_recipient": ("unit penerima", "recipient unit"),
    "role_donor": ("donatur", "donor"),
    "loading": ("Memuat…", "Loading…"),
    "save": ("Simpan", "Save"),
    "cancel": ("Batal", "Cancel"),
    "back": ("Kembali", "Back"),
    "more": ("Berikutnya", "Next"),
    "none_yet": ("Belum ada.", "None yet."),
    "required": ("wajib", "required"),
    "optional": ("tidak wajib", "optional"),
    "all": ("Semua", "All"),
    "apply": ("Terapkan", "Apply"),
    "reason": ("Alasan", "Reason"),
    "status": ("Status", "Status"),
    "actions": ("Tindakan", "Actions"),
    "details": ("Rincian", "Details"),
    "form_problems": ("Periksa isian berikut:", "Please check the following:"),
    "saved": ("Tersimpan.", "Saved."),
    # -- errors and refusals ----------------------------------------------------------------------------
    "error_title": ("Terjadi kendala", "Something went wrong"),
    "not_found_title": ("Halaman tidak ditemukan", "Page not found"),
    "not_found_text": ("Alamat ini tidak ada atau datanya sudah tidak tersedia.",
                       "This address does not exist or its data is no longer available."),
    "refused_title": ("Akses ditolak", "Access refused"),
    "refused_role": ("Halaman ini untuk peran lain. Anda masuk sebagai {role}.",
                     "This page is for another role. You are signed in as {role}."),
    "refused_csrf": ("Formulir ini sudah kedaluwarsa atau tidak berasal dari portal. Muat ulang halaman lalu "
                     "coba lagi.",
                     "This form has expired or did not come from the portal. Reload the page and try again."),
    "refused_origin": ("Permintaan dari situs lain ditolak.", "Requests from other sites are refused."),
    "unavailable_title": ("Layanan sedang tidak tersedia", "The service is unavailable"),
    "unavailable_text": ("Coba lagi sebentar lagi. Isian Anda belum terkirim.",
                         "Please try again shortly. Nothing you entered was sent."),
    "go_home": ("Ke halaman awal portal", "Go to the portal's start page"),
    # -- sign-in ----------------------------------------------------------------------------------------
    "sign_in_failed_title": ("Belum berhasil masuk", "Sign-in did not complete"),
    "sign_in_failed_text": ("Proses masuk kedaluwarsa atau dibatalkan. Silakan coba lagi.",
                            "The sign-in expired or was cancelled. Please try again."),
    "account_incomplete": ("Akun Anda belum ditautkan ke lembaga atau unit penerima. Hubungi administrator.",
                           "Your account is not yet linked to an organisation or recipient unit. "
                           "Please contact an administrator."),
    "signed_out_title": ("Anda sudah keluar", "You are signed out"),
    "signed_out_text": ("Sesi Anda di portal telah diakhiri. Kami juga mengakhiri sesi di layanan masuk.",
                        "Your portal session has ended. We are ending your sign-in service session too."),
    "signed_out_continue": ("Lanjutkan", "Continue"),
    "signed_out_done": ("Anda sudah keluar dari portal dan layanan masuk.",
                        "You are signed out of the portal and the sign-in service."),
    "welcome_back": ("Selamat datang, {name}.", "Welcome, {name}."),
    # -- home and public --------------------------------------------------------------------------------
    "home_title": ("Berbagi langsung, terbuka untuk semua", "Give directly, in the open"),
    "home_intro": ("Pilih kebutuhan sebuah RW, panti, atau pesantren di Jakarta, janjikan bantuan, lalu antar "
                   "langsung. Lembaga kemanusiaan memverifikasi penerima dan mengonfirmasi penyaluran.",
                   "Choose a need of an RW, a home or a pesantren in Jakarta, pledge your aid, then deliver it "
                   "directly. Humanitarian organisations verify recipients and confirm deliveries."),
    "home_browse": ("Lihat kebutuhan terbuka", "Browse open needs"),
    "home_totals": ("Program sejauh ini", "The programme so far"),
    "recipients": ("Penerima", "Recipients"),
    "households_targeted": ("KK sasaran", "Households targeted"),
    "households_reached": ("KK terjangkau", "Households reached"),
    "packages_delivered": ("Paket tersalurkan", "Packages delivered"),
    "donors": ("Kolaborator", "Collaborators"),
    "how_title": ("Cara memberi", "How to give"),
    "how_1": ("Pilih kebutuhan: saring menurut kota, kecamatan, kelurahan, jenis penerima, barang, atau "
              "urgensi.",
              "Choose a need: filter by city, district, sub-district, recipient kind, item or urgency."),
    "how_2": ("Buat janji: jumlah (paling banyak sisa yang dibutuhkan), tanggal rencana antar, dan siapa yang "
              "mengantar — Anda sendiri atau mitra penyalur.",
              "Pledge: the quantity (at most what is still needed), the planned delivery date, and who delivers "
              "— you or a distribution partner."),
    "how_3": ("Setelah janji dibuat, Anda mendapat kontak penerima. Hubungi mereka dalam 2×24 jam.",
              "Once you pledge you get the recipient's contact. Call them within 2×24 hours."),
    "how_4": ("Antar bantuan. Penerima atau fasilitator mengonfirmasi jumlah yang diterima, dan semuanya tampil "
              "di halaman publik.",
              "Deliver. The recipient or facilitator confirms the quantity received, and it all shows on the "
              "public page."),
    "how_rules": ("Bantuan harus layak, higienis, halal, cukup masa simpannya, dan bebas pesan politik. "
                  "Paket acuan: sembako {sembako} per KK per minggu; makanan siap saji {meal} per orang per hari; "
                  "paket Lebaran {eid}.",
                  "Aid must be in good condition, hygienic, halal, with enough shelf life and free of political "
                  "messages. Reference packages: staple food {sembako} per household per week; ready meals "
                  "{meal} per person per day; Eid package {eid}."),
    "needs_title": ("Kebutuhan terbuka", "Open needs"),
    "filters": ("Saring kebutuhan", "Filter needs"),
    "kota": ("Kota", "City (kota)"),
    "kecamatan": ("Kecamatan", "District (kecamatan)"),
    "kelurahan": ("Kelurahan", "Sub-district (kelurahan)"),
    "recipient_kind": ("Jenis penerima", "Recipient kind"),
    "item": ("Barang", "Item"),
    "urgency": ("Urgensi", "Urgency"),
    "no_needs": ("Tidak ada kebutuhan terbuka yang cocok dengan saringan ini.", "No open needs match these filters."),
    "progress_text": ("{delivered} tersalurkan, {pledged} dijanjikan dari {requested} {unit}",
                      "{delivered} delivered, {pledged} pledged of {requested} {unit}"),
    "remaining_text": ("Masih dibutuhkan: {remaining} {unit}", "Still needed: {remaining} {unit}"),
    "still_needed": ("Masih dibutuhkan", "Still needed"),
    "needed_by": ("Dibutuhkan paling lambat", "Needed by"),
    "see_need": ("Lihat kebutuhan", "See need"),
    "pledge_now": ("Janjikan bantuan", "Pledge aid"),
    "sign_in_to_pledge": ("Masuk atau daftar untuk berjanji", "Sign in or sign up to pledge"),
    "recipient_page": ("Halaman penerima", "Recipient page"),
    "beneficiaries": ("Penerima manfaat", "Beneficiaries"),
    "households": ("KK", "households"),
    "people": ("jiwa", "people"),
    "children": ("anak", "children"),
    "elderly": ("lansia", "elderly"),
    "disabled_people": ("disabilitas", "with disabilities"),
    "facilitated_by": ("Didampingi oleh {org}", "Facilitated by {org}"),
    "open_needs": ("Kebutuhan", "Needs"),
    "rw": ("RW", "RW"),
    # -- pledge form ------------------------------------------------------------------------------------
    "pledge_title": ("Janji bantuan", "Pledge aid"),
    "pledge_for": ("untuk {recipient}", "for {recipient}"),
    "quantity": ("Jumlah", "Quantity"),
    "quantity_hint": ("Paling banyak {remaining} {unit} (sisa yang masih dibutuhkan).",
                      "At most {remaining} {unit} (what is still needed)."),
    "planned_date": ("Tanggal rencana antar", "Planned delivery date"),
    "delivery_mode": ("Siapa yang mengantar?", "Who delivers?"),
    "note": ("Catatan untuk penerima", "Note for the recipient"),
    "pledge_submit": ("Kirim janji", "Send pledge"),
    "pledge_thanks": ("Terima kasih! Janji Anda tercatat. Hubungi penerima dalam 2×24 jam.",
                      "Thank you! Your pledge is recorded. Contact the recipient within 2×24 hours."),
    "conflict_over_pledged": ("Orang lain baru saja menjanjikan sebagian kebutuhan ini. Kini tersisa {available} "
                              "{unit}. Ubah jumlah menjadi paling banyak {available}, atau pilih kebutuhan lain.",
                              "Someone else has just pledged part of this need. {available} {unit} remain now. "
                              "Change the quantity to at most {available}, or choose another need."),
    "conflict_need_closed": ("Kebutuhan ini sudah tidak menerima janji (status: {status}). Silakan pilih kebutuhan "
                             "lain yang masih terbuka.",
                             "This need no longer takes pledges (status: {status}). Please choose another open "
                             "need."),
    "conflict_recipient": ("Penerima ini sedang tidak dapat menerima bantuan. Silakan pilih kebutuhan lain.",
                           "This recipient cannot receive aid at the moment. Please choose another need."),
    "conflict_state": ("Status sudah berubah menjadi \u201c{status}\u201d sebelum tindakan Anda tercatat. Berikut "
                       "keadaan terbarunya.",
                       "The status had already changed to \u201c{status}\u201d before your action was recorded. "
                       "Here is the current state."),
    "changed_elsewhere": ("Data ini diubah orang lain sementara Anda mengisi. Keadaan terbaru ditampilkan di "
                          "samping; isian Anda tetap ada. Periksa, lalu simpan lagi.",
                          "Someone else changed this while you were editing. The current values are shown next to "
                          "the fields; what you typed is kept. Check it, then save again."),
    "current_value": ("Saat ini: {value}", "Now: {value}"),
    "other_needs": ("Lihat kebutuhan lain", "See other needs"),
    # -- my pledges -------------------------------------------------------------------------------------
    "my_pledges_title": ("Janji saya", "My pledges"),
    "pledge_detail_title": ("Janji {item}", "Pledge of {item}"),
    "timeline": ("Riwayat", "Timeline"),
    "contact": ("Kontak penerima", "Recipient contact"),
    "contact_reminder": ("Hubungi {name} ({phone}) paling lambat {deadline} (2×24 jam setelah janji).",
                         "Call {name} ({phone}) by {deadline} (2×24 hours after pledging)."),
    "contact_closed": ("Kontak tidak lagi ditampilkan karena janji ini sudah {status}.",
                       "The contact is no longer shown because this pledge is {status}."),
    "contact_unavailable": ("Kontak penerima belum tersedia. Coba lagi sebentar lagi.",
                            "The recipient's contact is not available yet. Try again shortly."),
    "address": ("Alamat", "Address"),
    "cancel_pledge": ("Batalkan janji", "Cancel pledge"),
    "dispatch_pledge": ("Tandai sudah dikirim", "Mark as dispatched"),
    "pledge_cancelled": ("Janji dibatalkan.", "Pledge cancelled."),
    "pledge_dispatched": ("Janji ditandai sudah dikirim.", "Pledge marked as dispatched."),
    "received": ("diterima", "received"),
    "by": ("oleh", "by"),
    # -- offers -----------------------------------------------------------------------------------------
    "offers_title": ("Tawaran barang", "Offers of goods"),
    "new_offer": ("Buat tawaran", "Make an offer"),
    "offer_intro": ("Punya barang untuk diberikan? Sebutkan barang, jumlah dan wilayah; sistem mengusulkan "
                    "kebutuhan yang paling lama menunggu.",
                    "Have goods to give? Say what, how many and where; the platform proposes the needs that have "
                    "waited longest."),
    "areas": ("Wilayah (kota)", "Areas (kota)"),
    "available_until": ("Tersedia sampai", "Available until"),
    "offer_submit": ("Kirim tawaran", "Send offer"),
    "offer_title": ("Tawaran {item}", "Offer of {item}"),
    "proposals": ("Usulan penyaluran", "Proposed matches"),
    "no_proposals": ("Belum ada kebutuhan yang cocok.", "No matching needs yet."),
    "accept": ("Terima usulan", "Accept proposals"),
    "decline": ("Tolak usulan", "Decline proposals"),
    "offer_accepted": ("Usulan diterima; janji-janji Anda sudah dibuat.", "Proposals accepted; your pledges exist."),
    "offer_declined": ("Usulan ditolak.", "Proposals declined."),
    "dropped": ("Tidak lagi tersedia", "No longer available"),
    # -- profile ----------------------------------------------------------------------------------------
    "profile_title": ("Profil donatur", "Donor profile"),
    "donor_kind": ("Anda berdonasi sebagai", "You give as"),
    "display_name": ("Nama tampilan", "Display name"),
    "show_name": ("Tampilkan nama saya di halaman publik (jika tidak, tampil sebagai anonim)",
                  "Show my name on the public page (otherwise shown as anonymous)"),
    "contact_name": ("Nama kontak", "Contact name"),
    "email": ("E-mail", "E-mail"),
    "phone": ("Telepon", "Phone"),
    "profile_saved": ("Profil tersimpan.", "Profile saved."),
    "contact_section": ("Kontak (hanya untuk penerima yang Anda bantu)",
                        "Contact (only for the recipients you help)"),
    # -- recipient unit ---------------------------------------------------------------------------------
    "unit_title": ("Unit penerima", "Recipient unit"),
    "unit_needs_title": ("Kebutuhan {name}", "Needs of {name}"),
    "new_need": ("Pasang kebutuhan", "Post a need"),
    "from_catalogue": ("Pilih dari katalog", "Choose from the catalogue"),
    "suggestions": ("Usulan berdasarkan jumlah penerima manfaat", "Suggestions from the beneficiary counts"),
    "use_suggestion": ("Pakai usulan ini", "Use this suggestion"),
    "estimated_value": ("Perkiraan nilai {value}", "Estimated value {value}"),
    "item_description": ("Keterangan barang", "Item description"),
    "unit": ("Satuan", "Unit"),
    "priority": ("Urgensi", "Urgency"),
    "recurrence": ("Berulang", "Repeats"),
    "need_submit": ("Pasang kebutuhan", "Post need"),
    "need_posted": ("Kebutuhan terpasang.", "Need posted."),
    "edit_need": ("Ubah kebutuhan", "Edit need"),
    "need_saved": ("Kebutuhan tersimpan.", "Need saved."),
    "cancel_need": ("Batalkan kebutuhan", "Cancel need"),
    "need_cancelled": ("Kebutuhan dibatalkan.", "Need cancelled."),
    "incoming_title": ("Janji untuk {name}", "Pledges to {name}"),
    "confirm_pledge": ("Konfirmasi janji", "Confirm pledge"),
    "reject_pledge": ("Tolak janji", "Reject pledge"),
    "received_quantity": ("Jumlah yang diterima", "Quantity received"),
    "received_hint": ("Boleh kurang dari yang dijanjikan ({quantity}).",
                      "May be less than pledged ({quantity})."),
    "confirm_receipt": ("Konfirmasi penerimaan", "Confirm receipt"),
    "pledge_confirmed": ("Janji dikonfirmasi.", "Pledge confirmed."),
    "pledge_rejected": ("Janji ditolak.", "Pledge rejected."),
    "receipt_recorded": ("Penerimaan tercatat: {quantity} {unit}.", "Receipt recorded: {quantity} {unit}."),
    "donor": ("Donatur", "Donor"),
    "proof_ref": ("Bukti (nomor atau tautan foto)", "Proof (a reference or photo link)"),
    # -- facilitator ------------------------------------------------------------------------------------
    "org_title": ("Lembaga {name}", "Organisation {name}"),
    "queue_title": ("Antrean verifikasi", "Verification queue"),
    "queue_intro": ("Penerima yang baru terdaftar. Periksa dokumen dan peringatan duplikat sebelum memverifikasi.",
                    "Newly registered recipients. Check documents and duplicate warnings before verifying."),
    "queue_empty": ("Tidak ada penerima yang menunggu verifikasi.", "No recipient is waiting for verification."),
    "duplicate_warning": ("Mungkin duplikat dari {name} ({status})", "Possibly a duplicate of {name} ({status})"),
    "audit_trail": ("Jejak audit", "Audit trail"),
    "verify": ("Verifikasi", "Verify"),
    "activate": ("Aktifkan", "Activate"),
    "suspend": ("Tangguhkan", "Suspend"),
    "reinstate": ("Pulihkan", "Reinstate"),
    "archive": ("Arsipkan", "Archive"),
    "verification_note": ("Catatan verifikasi", "Verification note"),
    "document_refs": ("Nomor dokumen (pisahkan dengan koma)", "Document references (comma-separated)"),
    "recipient_changed": ("Status penerima kini: {status}.", "The recipient's status is now: {status}."),
    "recipients_title": ("Penerima lembaga", "The organisation's recipients"),
    "register_recipient": ("Daftarkan penerima", "Register a recipient"),
    "name": ("Nama", "Name"),
    "kind_description": ("Keterangan jenis (untuk \u201clainnya\u201d)", "Kind description (for \u201cother\u201d)"),
    "street_address": ("Alamat jalan", "Street address"),
    "rt": ("RT", "RT"),
    "notes": ("Catatan", "Notes"),
    "recipient_registered": ("Penerima terdaftar dan masuk antrean verifikasi.",
                             "Recipient registered and added to the verification queue."),
    "recipient_saved": ("Data penerima tersimpan.", "Recipient saved."),
    "edit_recipient": ("Ubah data penerima", "Edit recipient"),
    "lifecycle": ("Status dan tindakan", "Status and actions"),
    "needs_of_recipient": ("Kebutuhan", "Needs"),
    "pledges_of_recipient": ("Janji masuk", "Incoming pledges"),
    "awaiting_confirmation": ("Janji yang menunggu konfirmasi", "Pledges awaiting confirmation"),
    "awaiting_intro": ("Janji baru untuk penerima lembaga Anda. Konfirmasi atau tolak dalam 48 jam.",
                       "New pledges to your organisation's recipients. Confirm or reject within 48 hours."),
    "reports_title": ("Laporan kekhawatiran", "Concern reports"),
    "reports_empty": ("Tidak ada laporan terbuka.", "No open reports."),
    "outcome": ("Hasil", "Outcome"),
    "resolution_note": ("Catatan penyelesaian", "Resolution note"),
    "resolve": ("Selesaikan", "Resolve"),
    "report_resolved": ("Laporan diselesaikan.", "Report resolved."),
    "staff_title": ("Staf lembaga", "The organisation's staff"),
    "staff_by_admin": ("Staf baru diundang oleh administrator program. Anda mengundang kontak unit penerima "
                       "dari halaman penerima yang sudah terverifikasi.",
                       "New staff are invited by a programme administrator. You invite a recipient unit's "
                       "contact person from a verified recipient's page."),
    "unit_accounts": ("Akun unit penerima", "The unit's accounts"),
    "unit_accounts_intro": ("Undang kontak unit ini; mereka menerima e-mail untuk membuat kata sandi, lalu dapat "
                            "mengonfirmasi janji dan penerimaan.",
                            "Invite this unit's contact person; they get an e-mail to set a password, then they "
                            "confirm pledges and receipts themselves."),
    "invite": ("Kirim undangan", "Send invitation"),
    "first_name": ("Nama depan", "First name"),
    "last_name": ("Nama belakang", "Last name"),
    "invitation_sent": ("Undangan terkirim ke {email}.", "Invitation sent to {email}."),
    "revoke": ("Cabut akses", "Revoke access"),
    "account_revoked": ("Akses dicabut; akun dinonaktifkan.", "Access revoked; the account is disabled."),
    "choose_organisation": ("Pilih lembaga", "Choose an organisation"),
    "show": ("Tampilkan", "Show"),
    "account_state": ("Status akun", "Account state"),
    "too_many": ("Terlalu banyak: tersisa {available} {unit}.", "Too many: only {available} {unit} remain."),
    # -- webhooks ---------------------------------------------------------------------------------------
    "webhooks_title": ("Webhook lembaga", "The organisation's webhooks"),
    "webhooks_intro": ("Sistem Anda menerima peristiwa bertanda tangan (Standard Webhooks) saat ada perubahan.",
                       "Your system receives signed events (Standard Webhooks) when something changes."),
    "new_endpoint": ("Tambah endpoint", "Add endpoint"),
    "endpoint_url": ("URL endpoint (https)", "Endpoint URL (https)"),
    "description": ("Keterangan", "Description"),
    "event_types": ("Jenis peristiwa", "Event types"),
    "event_types_hint": ("Kosongkan untuk semua peristiwa.", "Leave empty for every event."),
    "custom_event_types": ("Pola lain (pisahkan dengan koma), mis. ksbb.pledge.delivered.*",
                           "Other patterns (comma-separated), e.g. ksbb.pledge.delivered.*"),
    "kota_filter": ("Hanya kota ini", "Only these cities"),
    "kind_filter": ("Hanya jenis penerima ini", "Only these recipient kinds"),
    "endpoint_created": ("Endpoint dibuat", "Endpoint created"),
    "secret_once": ("Simpan rahasia ini sekarang: rahasia hanya ditampilkan sekali dan dipakai untuk memeriksa "
                    "tanda tangan.",
                    "Store this secret now: it is shown only once and verifies the signatures."),
    "secret": ("Rahasia penandatanganan", "Signing secret"),
    "secret_hint": ("Rahasia berakhiran {hint}", "Secret ending in {hint}"),
    "enabled": ("Aktif", "Enabled"),
    "disabled": ("Nonaktif", "Disabled"),
    "enable": ("Aktifkan", "Enable"),
    "disable": ("Nonaktifkan", "Disable"),
    "rotate_secret": ("Ganti rahasia", "Rotate secret"),
    "secret_rotated": ("Rahasia baru dibuat. Rahasia lama tetap berlaku sampai {until}.",
                       "New secret issued. The old one stays valid until {until}."),
    "send_test": ("Kirim peristiwa uji", "Send a test event"),
    "test_sent": ("Peristiwa uji dikirim.", "Test event sent."),
    "delivery_log": ("Log pengiriman", "Delivery log"),
    "refresh": ("Muat ulang", "Refresh"),
    "no_deliveries": ("Belum ada pengiriman.", "No deliveries yet."),
    "event_type": ("Jenis peristiwa", "Event type"),
    "attempts": ("Percobaan", "Attempts"),
    "last_status": ("Kode terakhir", "Last status code"),
    "redeliver": ("Kirim ulang", "Redeliver"),
    "redelivered": ("Dijadwalkan untuk dikirim ulang.", "Scheduled for redelivery."),
    "recover_since": ("Kirim ulang semua yang gagal sejak", "Redeliver everything that failed since"),
    "recover": ("Pulihkan", "Recover"),
    "recovered": ("{count} pengiriman dijadwalkan ulang.", "{count} deliveries requeued."),
    "delete_endpoint": ("Hapus endpoint", "Delete endpoint"),
    "endpoint_deleted": ("Endpoint dihapus.", "Endpoint deleted."),
    "endpoint_saved": ("Endpoint tersimpan.", "Endpoint saved."),
    "failing_since": ("Gagal sejak {since}", "Failing since {since}"),
    "delivery_title": ("Pengiriman {id}", "Delivery {id}"),
    "latency": ("Waktu", "Time"),
    "response": ("Jawaban", "Response"),
    "rate_limit": ("Batas per detik", "Limit per second"),
    # -- admin ------------------------------------------------------------------------------------------
    "admin_title": ("Ringkasan program", "Programme overview"),
    "organisations_title": ("Lembaga fasilitator", "Facilitator organisations"),
    "new_organisation": ("Daftarkan lembaga", "Register an organisation"),
    "organisation_kind": ("Jenis lembaga", "Organisation kind"),
    "organisation_created": ("Lembaga terdaftar.", "Organisation registered."),
    "organisation_changed": ("Status lembaga kini: {status}.", "The organisation's status is now: {status}."),
    "coverage": ("Cakupan", "Coverage"),
    "by_kota": ("Per kota", "By city"),
    "invite_facilitators": ("Undang staf fasilitator", "Invite facilitator staff"),
}

LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "item": {
        "sembako": ("Paket sembako", "Staple-food package"), "ready_meals": ("Makanan siap saji", "Ready meals"),
        "eid_package": ("Paket Lebaran", "Eid package"), "masks": ("Masker", "Masks"),
        "hand_sanitizer": ("Hand sanitizer", "Hand sanitiser"), "baby_milk": ("Susu bayi", "Baby milk"),
        "hygiene_kit": ("Paket kebersihan", "Hygiene kit"), "medicine": ("Paket obat", "Medicine package"),
        "other": ("Bantuan lain", "Other aid"),
    },
    "kind": {
        "rw_rentan": ("RW rentan", "Vulnerable RW"), "panti_asuhan": ("Panti asuhan", "Orphanage"),
        "panti_lansia": ("Panti lansia", "Elderly home"), "panti_disabilitas": ("Panti disabilitas", "Disability home"),
        "pesantren": ("Pesantren", "Pesantren"), "lainnya": ("Lainnya", "Other"),
    },
    "priority": {"high": ("Mendesak", "Urgent"), "medium": ("Sedang", "Medium"), "low": ("Rendah", "Low")},
    "recurrence": {"none": ("Sekali", "Once"), "weekly": ("Mingguan", "Weekly"), "monthly": ("Bulanan", "Monthly")},
    "mode": {"own_delivery": ("Saya antar sendiri", "I deliver myself"),
             "distribution_partner": ("Lewat mitra penyalur", "Through a distribution partner")},
    "pledge_status": {
        "pledged": ("dijanjikan", "pledged"), "confirmed": ("dikonfirmasi", "confirmed"),
        "dispatched": ("dalam pengiriman", "dispatched"), "delivered": ("diterima", "delivered"),
        "cancelled": ("dibatalkan", "cancelled"), "rejected": ("ditolak", "rejected"),
        "expired": ("kedaluwarsa", "expired"),
    },
    "need_status": {"open": ("terbuka", "open"), "fulfilled": ("terpenuhi", "fulfilled"),
                    "closed": ("ditutup", "closed"), "cancelled": ("dibatalkan", "cancelled")},
    "recipient_status": {
        "registered": ("terdaftar", "registered"), "verified": ("terverifikasi", "verified"),
        "active": ("aktif", "active"), "suspended": ("ditangguhkan", "suspended"),
        "archived": ("diarsipkan", "archived"),
    },
    "organisation_status": {"active": ("aktif", "active"), "suspended": ("ditangguhkan", "suspended")},
    "organisation_kind": {
        "ngo": ("LSM", "NGO"), "zakat": ("Lembaga zakat", "Zakat body"), "red_cross": ("Palang Merah", "Red Cross"),
        "faith_based": ("Lembaga keagamaan", "Faith-based"), "community": ("Komunitas", "Community"),
        "government": ("Pemerintah", "Government"), "other": ("Lainnya", "Other"),
    },
    "donor_kind": {
        "person": ("Perorangan", "Individual"), "company": ("Perusahaan", "Company"),
        "community": ("Komunitas", "Community"), "mosque": ("Masjid", "Mosque"), "church": ("Gereja", "Church"),
        "other_organisation": ("Lembaga lain", "Other organisation"),
    },
    "offer_status": {"proposed": ("menunggu keputusan Anda", "awaiting your decision"),
                     "accepting": ("sedang diproses", "being processed"), "accepted": ("diterima", "accepted"),
                     "declined": ("ditolak", "declined"), "unmatched": ("belum ada yang cocok", "no match yet")},
    "report_outcome": {
        "dismissed": ("Tidak terbukti", "Dismissed"), "corrected": ("Data diperbaiki", "Data corrected"),
        "recipient_suspended": ("Penerima ditangguhkan", "Recipient suspended"),
        "recipient_archived": ("Penerima diarsipkan", "Recipient archived"),
    },
    "account_state": {"invited": ("diundang", "invited"), "disabling": ("sedang dinonaktifkan", "being disabled"),
                      "disabled": ("nonaktif", "disabled")},
    "delivery_status": {
        "pending": ("menunggu", "pending"), "succeeded": ("terkirim", "delivered"), "failed": ("gagal", "failed"),
    },
    "event_group": {
        "ksbb.pledge.*": ("Janji (dibuat, dikonfirmasi, dikirim, diterima, …)",
                          "Pledges (created, confirmed, dispatched, delivered, …)"),
        "ksbb.need.*": ("Kebutuhan (dibuka, diubah, terpenuhi, ditutup)", "Needs (opened, changed, fulfilled, closed)"),
        "ksbb.recipient.*": ("Penerima (terdaftar, terverifikasi, ditangguhkan, …)",
                             "Recipients (registered, verified, suspended, …)"),
        "ksbb.match.*": ("Pencocokan tawaran", "Offer matches"),
        "ksbb.webhook.*": ("Kesehatan webhook", "Webhook health"),
    },
    "action": {"verify": ("verifikasi", "verify"), "activate": ("aktifkan", "activate"),
               "suspend": ("tangguhkan", "suspend"), "reinstate": ("pulihkan", "reinstate"),
               "archive": ("arsipkan", "archive"), "register": ("daftar", "register"), "update": ("ubah", "update"),
               "create": ("buat", "create")},
}

#: API error codes -> (Bahasa Indonesia, English); `{…}` are filled from the error's details.
PROBLEMS: dict[str, tuple[str, str]] = {
    "over_pledged": ("Jumlah melebihi sisa kebutuhan (tersisa {available}).",
                     "The quantity is more than what is still needed ({available} remain)."),
    "need_not_open": ("Kebutuhan ini sudah tidak terbuka.", "This need is no longer open."),
    "recipient_unavailable": ("Penerima ini sedang tidak dapat menerima bantuan.",
                              "This recipient cannot receive aid at the moment."),
    "planned_date_past": ("Tanggal rencana tidak boleh di masa lalu.", "The planned date cannot be in the past."),
    "planned_date_too_far": ("Tanggal rencana terlalu jauh ke depan.", "The planned date is too far ahead."),
    "illegal_transition": ("Tindakan ini tidak berlaku untuk status saat ini.",
                           "This action does not apply to the current status."),
    "received_exceeds_pledged": ("Jumlah diterima tidak boleh melebihi jumlah yang dijanjikan.",
                                 "The quantity received cannot exceed the quantity pledged."),
    "pledge_not_live": ("Janji ini sudah tidak berlaku.", "This pledge no longer counts."),
    "offer_not_open": ("Tawaran ini sudah diputuskan.", "This offer has already been decided."),
    "available_until_past": ("Tanggal tidak boleh di masa lalu.", "The date cannot be in the past."),
    "available_until_too_far": ("Tanggal terlalu jauh ke depan.", "The date is too far ahead."),
    "forbidden": ("Anda tidak berwenang melakukan ini.", "You are not allowed to do this."),
    "contact_access_ended": ("Kontak sudah tidak dapat dilihat.", "The contact can no longer be seen."),
    "contact_unknown": ("Kontak penerima belum tersedia.", "The recipient's contact is not available yet."),
    "idempotency_key_reused": ("Formulir ini sudah dipakai untuk permintaan lain. Muat ulang halaman.",
                               "This form was already used for another request. Reload the page."),
    "concurrent_update": ("Data sedang diubah orang lain; coba lagi.", "Someone else is changing this; try again."),
    "concurrent_change": ("Data sedang diubah orang lain; coba lagi.", "Someone else is changing this; try again."),
    "precondition_failed": ("Data ini diubah orang lain sementara Anda mengisi.",
                            "Someone else changed this while you were editing."),
    "unknown_area": ("Kode wilayah tidak dikenal.", "Unknown area code."),
    "area_mismatch": ("Kelurahan, kecamatan dan kota tidak saling cocok.",
                      "The kelurahan, kecamatan and kota do not match."),
    "outside_jakarta": ("Wilayah harus di DKI Jakarta.", "The area must be in DKI Jakarta."),
    "unknown_organisation": ("Lembaga tidak dikenal.", "Unknown organisation."),
    "organisation_suspended": ("Lembaga sedang ditangguhkan.", "The organisation is suspended."),
    "reason_required": ("Alasan wajib diisi.", "A reason is required."),
    "description_required": ("Keterangan wajib diisi untuk jenis ini.", "A description is required for this kind."),
    "rw_required": ("Nomor RW wajib untuk RW rentan.", "An RW number is required for a vulnerable RW."),
    "duplicate_recipient": ("Penerima dengan nama dan alamat ini sudah terdaftar.",
                            "A recipient with this name and address is already registered."),
    "recipient_archived": ("Penerima sudah diarsipkan.", "The recipient is archived."),
    "recipient_not_active": ("Penerima belum aktif; kebutuhan hanya untuk penerima aktif.",
                             "The recipient is not active; only active recipients post needs."),
    "needed_by_in_past": ("Tanggal tidak boleh di masa lalu.", "The date cannot be in the past."),
    "needed_by_too_far": ("Tanggal terlalu jauh ke depan (paling lama {horizon_days} hari).",
                          "The date is too far ahead (at most {horizon_days} days)."),
    "below_committed": ("Jumlah tidak boleh kurang dari yang sudah dijanjikan ({committed}).",
                        "The quantity cannot be below what is already pledged ({committed})."),
    "report_resolved": ("Laporan ini sudah diselesaikan.", "This report is already resolved."),
    "rate_limited": ("Terlalu banyak permintaan; coba lagi nanti.", "Too many requests; try again later."),
    "too_many_requests": ("Terlalu banyak permintaan; coba lagi sebentar lagi.",
                          "Too many requests; try again in a moment."),
    "endpoint_disabled": ("Endpoint sedang nonaktif.", "The endpoint is disabled."),
    "invalid_url": ("URL tidak valid.", "The URL is not valid."),
    "url_not_allowed": ("URL ini tidak diizinkan (harus https dan alamat publik).",
                        "This URL is not allowed (it must be https and a public address)."),
    "account_incomplete": ("Akun Anda belum ditautkan ke lembaga atau unit penerima.",
                           "Your account is not linked to an organisation or recipient unit."),
    "service_unavailable": ("Layanan sedang tidak tersedia; coba lagi sebentar lagi.",
                            "The service is unavailable; try again shortly."),
    "identity_provider_unavailable": ("Layanan masuk sedang tidak tersedia; coba lagi sebentar lagi.",
                                      "The sign-in service is unavailable; try again shortly."),
    "validation_error": ("Isian tidak valid.", "The input is not valid."),
    "account_conflict": ("E-mail ini sudah dipakai akun lain (lembaga atau unit lain).",
                         "This e-mail already belongs to another account (another organisation or unit)."),
    "invitation_refused": ("Undangan ditolak: penerima harus sudah terverifikasi dan lembaganya aktif.",
                           "Invitation refused: the recipient must be verified and its organisation active."),
}

#: Pydantic's English validation messages -> Bahasa Indonesia (first match wins).
VALIDATION: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^Field required"), "Wajib diisi."),
    (re.compile(r"greater than or equal to (\S+)"), "Harus paling sedikit {0}."),
    (re.compile(r"less than or equal to (\S+)"), "Harus paling banyak {0}."),
    (re.compile(r"greater than (\S+)"), "Harus lebih dari {0}."),
    (re.compile(r"less than (\S+)"), "Harus kurang dari {0}."),
    (re.compile(r"at most (\d+) characters?"), "Paling banyak {0} karakter."),
    (re.compile(r"at least (\d+) characters?"), "Paling sedikit {0} karakter."),
    (re.compile(r"at most (\d+) items?"), "Paling banyak {0} pilihan."),
    (re.compile(r"valid integer"), "Harus bilangan bulat."),
    (re.compile(r"valid number"), "Harus berupa angka."),
    (re.compile(r"valid date"), "Tanggal tidak valid."),
    (re.compile(r"valid datetime"), "Tanggal dan waktu tidak valid."),
    (re.compile(r"email", re.IGNORECASE), "Alamat e-mail tidak valid."),
    (re.compile(r"^Input should be"), "Pilih salah satu nilai yang tersedia."),
    (re.compile(r"phone", re.IGNORECASE), "Nomor telepon tidak valid."),
    (re.compile(r"url|URL"), "URL tidak valid."),
]

FIELD_LABELS: dict[str, str] = {
    "quantity": "quantity", "planned_date": "planned_date", "received_quantity": "received_quantity",
    "needed_by": "needed_by", "display_name": "display_name", "url": "endpoint_url", "reason": "reason",
    "name": "name", "street_address": "street_address", "kelurahan_code": "kelurahan", "rw": "rw",
    "contact.phone": "phone", "contact.email": "email", "contact.name": "contact_name", "email": "email",
    "first_name": "first_name",
    "available_until": "available_until", "note": "note", "item": "item",
}


def text(key: str, lang: str, **values: Any) -> str:
    """One text in a language, placeholders filled; a missing key shows itself (tests catch it)."""
    pair = MESSAGES.get(key)
    if pair is None:
        return key
    template = pair[1] if lang == "en" else pair[0]
    return template.format(**values) if values else template


def label(group: str, code: str | None, lang: str) -> str:
    """The label of a code in a vocabulary (item, kind, status, …); the code itself when unknown."""
    if code is None:
        return "–"
    pair = LABELS.get(group, {}).get(code)
    if pair is None:
        return code
    return pair[1] if lang == "en" else pair[0]


@functools.cache
def labels(lang: str) -> dict[str, dict[str, str]]:
    """Every vocabulary in one language (for templates; built once per language, never changed)."""
    index = 1 if lang == "en" else 0
    return {group: {code: pair[index] for code, pair in entries.items()} for group, entries in LABELS.items()}


def problem_message(problem: Any, lang: str) -> str:
    """An API problem in the person's language (the API's own words when the code is unknown)."""
    pair = PROBLEMS.get(problem.code)
    if pair is None:
        if problem.code.endswith("_not_found"):
            return "Data tidak ditemukan." if lang != "en" else "Not found."
        return problem.message if lang == "en" else f"Permintaan ditolak ({problem.message})."
    template = pair[1] if lang == "en" else pair[0]
    details = {k: (number(v) if isinstance(v, int) else v) for k, v in (problem.details or {}).items()}
    try:
        return template.format(**details)
    except (KeyError, IndexError):
        return re.sub(r"\s*\([^)]*\{[^}]+\}[^)]*\)", "", template)


def validation_message(message: str, lang: str) -> str:
    """A validation message in the person's language."""
    if lang == "en":
        return message
    for pattern, translated in VALIDATION:
        match = pattern.search(message)
        if match:
            return translated.format(*match.groups())
    return "Isian tidak valid."


def field_label(field: str, lang: str) -> str | None:
    """The form label of an API field, if the portal has one."""
    key = FIELD_LABELS.get(field)
    return text(key, lang) if key else None
